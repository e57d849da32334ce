"""recording: the recorder keeps up with ingest; a 1M-frame recording opens and replays.

- **Recorder throughput.** ``/monitor`` frames (events and their delivery reports) are fed
  through ``ObservationSession.feed`` — the ingest thread's call — with a ``Recorder``
  attached, as fast as the feed goes; sustained = frames / (time until the last one is
  committed). Then paced at ``PACED_RATE`` frames/s for a few seconds, in 1 ms bursts as
  from a socket: the recorder's largest backlog, and each ``feed`` call's latency with the
  recorder against the same paced feed without it (the baseline, same run) — the recorder
  must not slow the ingest.
- **First screen.** A 1,000,000-frame recording is written with ``executemany`` (not timed
  into the figure), then timed: ``ReplayWorkspace.open`` (open read-only, metadata, bounds,
  the first 2,000 frames through the validator) + the replay bar (its activity strip reads
  the whole time index) + the timeline, throughput and findings views built over the store
  and painted offscreen. The file is in the page cache (just written): a warm open.
- **Replay memory.** The same recording replayed to its end at max speed; resident memory
  sampled every 50,000 frames: the peak growth over the process after opening, and frames/s.
  Then again with a store of ``SMALL_STORE`` rows (it evicts): the growth over the second
  half of the replay, which must be flat.

``python -m tests.benchmarks --only recording`` (or ``python -m tests.benchmarks.recording``).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path
from typing import Any

from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.services.recording import Recorder, RecordingMeta, Replay, ReplayWorkspace
from monitor.services.recording.writer import RecordingWriter
from monitor.services.run_archive import archived_store

from .results import BenchmarkResult, Figure, Target
from .streams import monitor_frames

START = 1_700_000_000.0
#: frames/s the issue asks the recorder to keep up with
PACED_RATE = 20_000.0
#: the paced feed wakes up this often (s) and feeds what arrived meanwhile
BURST = 0.001
BIG = 1_000_000
#: a store smaller than the big recording's 500,000 events (it evicts half of them)
SMALL_STORE = 100_000
CHUNK = 50_000


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _session() -> ObservationSession:
    return ObservationSession(archived_store(), validator_config=FROM_START_VALIDATOR)


def _recorder(session: ObservationSession, folder: Path) -> Recorder:
    recorder = Recorder.create("ws://bench", "embedded", late_join=False, directory=folder)
    return recorder.start().attach(session)


# --- recorder throughput --------------------------------------------------------------


def _unpaced(frames: list[bytes], folder: Path) -> dict[str, Any]:
    session = _session()
    recorder = _recorder(session, folder)
    started = time.perf_counter()
    for i, frame in enumerate(frames):
        session.feed(frame, START + i / PACED_RATE)
    fed = time.perf_counter() - started
    assert recorder.flush(120)
    committed = time.perf_counter() - started
    status = recorder.stop()
    return {
        "frames": len(frames),
        "feed_s": round(fed, 3),
        "feed_frames_per_s": len(frames) / fed,
        "committed_s": round(committed, 3),
        "sustained_frames_per_s": len(frames) / committed,
        "written": status.written,
        "unrecorded": status.unrecorded,
        "bytes_on_disk": status.bytes_on_disk,
    }


def _paced(frames: list[bytes], folder: Path | None) -> dict[str, Any]:
    """Feed at ``PACED_RATE`` on a schedule; per-feed latency (and backlog if recording)."""
    session = _session()
    recorder = _recorder(session, folder) if folder is not None else None
    latencies: list[float] = []
    backlog = 0
    states: set[str] = set()
    began = time.perf_counter()
    i = 0
    while i < len(frames):
        # Frames arrive in bursts, as from a socket: every millisecond, feed those due,
        # then wait (releasing the GIL, as the ingest does while it awaits the socket).
        due = min(len(frames), int((time.perf_counter() - began) * PACED_RATE) + 1)
        while i < due:
            t = time.perf_counter()
            session.feed(frames[i], START + i / PACED_RATE)
            latencies.append(time.perf_counter() - t)
            if recorder is not None and i % 1000 == 0:
                status = recorder.status()
                backlog = max(backlog, status.pending)
                states.add(status.state.value)
            i += 1
        time.sleep(BURST)
    elapsed = time.perf_counter() - began
    out: dict[str, Any] = {
        "frames": len(frames),
        "achieved_rate": len(frames) / elapsed,
        "feed_p50_us": statistics.median(latencies) * 1e6,
        "feed_p99_us": statistics.quantiles(latencies, n=100)[98] * 1e6,
        "feed_max_us": max(latencies) * 1e6,
    }
    if recorder is not None:
        assert recorder.flush(60)
        status = recorder.stop()
        out.update(
            max_backlog_frames=backlog,
            states=sorted(states),
            written=status.written,
            unrecorded=status.unrecorded,
        )
    return out


# --- a 1M-frame recording -------------------------------------------------------------


def _write_big(path: Path, total: int) -> float:
    started = time.perf_counter()
    meta = RecordingMeta(created_at=START, target="ws://bench", kind="embedded", late_join=False)
    writer = RecordingWriter(path, meta)
    source = writer.source_id("ws://bench")
    frames = monitor_frames(total // 2, deliveries=True, start=START, rate=PACED_RATE / 2)
    written = 0
    while written < total:
        chunk = list(islice(frames, CHUNK))
        if not chunk:
            break
        writer.append(
            [
                (written + i + 1, START + (written + i) / PACED_RATE, source, raw)
                for i, raw in enumerate(chunk)
            ]
        )
        written += len(chunk)
    writer.set_meta(ended_at=START + written / PACED_RATE)
    writer.close()
    return time.perf_counter() - started


def _first_screen(path: Path) -> tuple[dict[str, float], ReplayWorkspace]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from monitor._qt.findings_panel import FindingsPanel
    from monitor._qt.replay_bar import ReplayBar
    from monitor._qt.theme import apply_theme
    from monitor._qt.throughput import ThroughputView
    from monitor._qt.timeline import TimelineView

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    apply_theme(app)
    marks: dict[str, float] = {}
    started = time.perf_counter()
    workspace = ReplayWorkspace.open(path)
    marks["open_and_first_frames_s"] = time.perf_counter() - started
    bar = ReplayBar(workspace.replay)
    marks["replay_bar_s"] = time.perf_counter() - started - marks["open_and_first_frames_s"]
    store = workspace.session.store
    now = workspace.replay.clock()
    views = [TimelineView(store), ThroughputView(store), FindingsPanel(store)]
    for view in views:
        view.resize(1000, 400)
        view.refresh(now)  # type: ignore[attr-defined]
        view.grab()  # paint, offscreen
    bar.grab()
    app.processEvents()
    marks["first_screen_s"] = time.perf_counter() - started
    marks["events_shown"] = store.total
    for widget in (*views, bar):
        widget.deleteLater()
    app.processEvents()
    return marks, workspace


def _replay_memory(replay: Replay) -> dict[str, Any]:
    gc.collect()
    base = resident_bytes()
    samples = []
    started = time.perf_counter()
    replay.play()
    replay.set_speed(float("inf"))
    while not replay.finished:
        # max speed in slices, as the GUI's timer drives it (budget per pump)
        replay._advance(replay.end, None, max_frames=CHUNK)
        samples.append((replay.frames_fed, resident_bytes() - base))
    elapsed = time.perf_counter() - started
    growth = [g for _, g in samples]
    return {
        "frames": replay.frames_fed,
        "events": replay.session.store.total,
        "replay_s": round(elapsed, 2),
        "frames_per_s": replay.frames_fed / elapsed,
        "rss_after_open_bytes": base,
        "rss_growth_peak_bytes": max(growth),
        "rss_growth_at_quarter_bytes": growth[len(growth) // 4],
        "rss_growth_end_bytes": growth[-1],
        "rss_growth_second_half_bytes": growth[-1] - growth[len(growth) // 2],
        "samples": [(f, round(g / 1e6, 1)) for f, g in samples[:: max(1, len(samples) // 10)]],
        "findings": replay.session.store.findings_total,
    }


def measure(quick: bool) -> BenchmarkResult:
    result = BenchmarkResult("recording")
    throughput_frames = 40_000 if quick else 200_000
    paced_frames = 20_000 if quick else 100_000  # 1 s or 5 s at 20,000/s
    big = 100_000 if quick else BIG
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        folder = Path(tmp)
        frames = list(monitor_frames(throughput_frames // 2, deliveries=True, start=START))
        unpaced = _unpaced(frames, folder / "unpaced")
        paced_frames_list = frames[:paced_frames]
        baseline = _paced(paced_frames_list, None)
        paced = _paced(paced_frames_list, folder / "paced")
        del frames, paced_frames_list
        gc.collect()

        path = folder / "big.sqlite"
        generated = _write_big(path, big)
        size = path.stat().st_size
        screen, workspace = _first_screen(path)
        try:
            memory = _replay_memory(workspace.replay)
            # the same again with a store smaller than the recording: once the store is
            # full it evicts, and memory must stay flat for the rest of the replay
            small = Replay(
                workspace.opened.recording,
                store_factory=lambda: archived_store(capacity=SMALL_STORE),
            )
            bounded = _replay_memory(small)
            del small
        finally:
            workspace.stop()
    result.details.update(
        unpaced=unpaced,
        paced_without_recorder=baseline,
        paced_with_recorder=paced,
        big={"frames": big, "bytes": size, "generate_s": round(generated, 2)},
        first_screen=screen,
        replay=memory,
        replay_small_store=bounded,
        threads_left=[t.name for t in threading.enumerate() if t is not threading.main_thread()],
    )
    result.add(
        Figure(
            "recording.sustained_frames_per_s",
            unpaced["sustained_frames_per_s"],
            "frames/s",
            targets=(Target(">=", PACED_RATE),),
            note="feed as fast as it goes, recorder attached, until every frame is committed",
        )
    )
    result.add(
        Figure(
            "recording.backlog_at_20k_per_s",
            float(paced["max_backlog_frames"]),
            "frames",
            targets=(Target("<=", PACED_RATE),),  # under a second of frames waiting
            note=f"largest queue while fed at {PACED_RATE:,.0f}/s; states {paced['states']}",
        )
    )
    result.add(
        Figure(
            "recording.feed_p99_at_20k_per_s",
            paced["feed_p99_us"],
            "µs",
            baseline=baseline["feed_p99_us"],
            baseline_of="the same paced feed without a recorder",
            targets=(Target("<=", 1000.0),),
            note="the ingest thread's feed() latency while the writer thread commits",
        )
    )
    result.add(
        Figure(
            "recording.feed_p50_at_20k_per_s",
            paced["feed_p50_us"],
            "µs",
            baseline=baseline["feed_p50_us"],
            baseline_of="the same paced feed without a recorder",
        )
    )
    label = "1M" if big >= BIG else f"{big // 1000}k"
    result.add(
        Figure(
            f"recording.first_screen_{label}_s",
            screen["first_screen_s"],
            "s",
            targets=(Target("<", 2.0),),
            note="open + first 2,000 frames + replay bar + timeline/throughput/findings painted",
        )
    )
    result.add(
        Figure(
            f"recording.replay_rss_peak_{label}_mb",
            memory["rss_growth_peak_bytes"] / 1e6,
            "MB",
            targets=(Target("<=", 200.0),),
            note="resident memory growth while replaying at max speed (store ≤ 1M rows)",
        )
    )
    result.add(
        Figure(
            f"recording.replay_small_store_second_half_{label}_mb",
            bounded["rss_growth_second_half_bytes"] / 1e6,
            "MB",
            targets=(Target("<=", 10.0),),
            note=f"store of {SMALL_STORE:,} rows: RSS growth over the replay's second half",
        )
    )
    result.add(Figure(f"recording.replay_{label}_frames_per_s", memory["frames_per_s"], "frames/s"))
    return result


if __name__ == "__main__":
    from .results import render_table

    report = measure("--quick" in sys.argv)
    print(render_table([report]))
    for name in ("unpaced", "paced_without_recorder", "paced_with_recorder", "big"):
        print(name, report.details[name])
    print("first_screen", report.details["first_screen"])
    for name in ("replay", "replay_small_store"):
        print(name, {k: v for k, v in report.details[name].items() if k != "samples"})
        print(f"{name} rss samples (frames, MB)", report.details[name]["samples"])
