"""monitor_ingest: the monitor's ingest under load, with its window open and repainting.

Sources of a ``/monitor`` stream:

- **runtime**: ``agent-runtime serve --pace 0`` in a subprocess, traffic from the load
  generator in another (20 users, ``RATE`` events/s asked for). On a 2-core machine the
  runtime, the load generator and the monitor share two cores.
- **burst**: the same, with the load generator asking for as much as the runtime can give
  for ``BURST_S`` seconds: the window falls behind, says so, and must catch up with nothing
  lost.
- **replay**: ``bare_ws replay``, a stand-in for the runtime that costs next to nothing to
  produce: the same kind of frames (events and delivery reports) paced at ``RATE``
  events/s. It shows what the monitor itself can take.

Observers, one after the other on the same source:

- **bare** (the baseline): a websockets client on its own thread and asyncio loop that only
  counts frames.
- **monitor**: ``Workspace.remote(url, token)`` — its capture process reads the socket and
  records every frame; the ingest thread follows the recording into the session — under
  the ``MainWindow``, shown offscreen at 1400x900 and drawing as in the app; refresh and
  paint times from ``frame_clock.TimedMainWindow``.

Rates are events over the time from the first to the last event received. Zero loss: the
store holds exactly the events the source emitted (``/metrics`` for the runtime), and the
session reported no lost events (AEM009) and no observer-stream gap (AEM019). Display lag:
from an event's server timestamp to the moment the window's process took it into its store
(every 50th event; same machine, same clock). Caught up: from the source's last event to
the store holding every event it emitted. CPU use of every process (and of the monitor's
GUI and ingest threads) is in the details.
"""

from __future__ import annotations

import gc
import os
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
from PySide6.QtCore import QEventLoop, QTimer
from websockets.asyncio.client import connect

from monitor.model.clock import steady_time
from monitor.services.loop_thread import LoopThread
from monitor.services.workspace import Workspace
from runtime.auth import Role, TokenAuthority
from runtime.load_generator import percentiles
from runtime.streams import ConnectionState

from .frame_clock import FrameClock, TimedMainWindow, themed_application
from .processes import (
    RuntimeProcess,
    bare_server_process,
    cores_used,
    cpu_snapshot,
    load_command,
    read_load_run,
    runtime_process,
    stop_process,
)
from .results import BenchmarkResult, Figure, Target

USERS = 20
RATE = 20_000
#: the burst's length (s) at the runtime's maximum rate, and how long the window may then
#: take to show every event
BURST_S = 10.0
CATCH_UP_LIMIT = 30.0
#: after the source is done, wait at most this long for the last events to arrive
DRAIN_TIMEOUT = 45.0
#: display lag is sampled on every n-th frame the window takes in
LAG_EVERY = 50
#: the replay server starts streaming this long after a client connected
REPLAY_DELAY = 2.0
#: frame statistics skip the first second of events (the views' first layouts)
FRAME_WARMUP_S = 1.0
CONNECT_TIMEOUT = 10.0
WINDOW_SIZE = (1400, 900)  # monitor._qt.app.DEFAULT_SIZE

_DELIVERY_PREFIX = b'{"type":"delivery"'
_ACK_PREFIX = b'{"type":"connection_ack"'


# --- sources ------------------------------------------------------------------------------


class Traffic(Protocol):
    """A ``/monitor`` stream to observe: where it is, how to start it, what it emitted."""

    @property
    def url(self) -> str: ...

    @property
    def token(self) -> str: ...

    @property
    def source_pid(self) -> int: ...

    @property
    def drain_timeout(self) -> float:
        """How long, after ``finished()``, the observer may wait for the last events."""
        ...

    def start(self) -> None: ...

    def finished(self) -> bool: ...

    def emitted(self) -> int:
        """Events the source emitted since ``start`` (once ``finished``)."""
        ...

    def close(self) -> dict[str, Any]:
        """Stop what ``start`` started; what the source reports about itself."""
        ...


@dataclass
class RuntimeLoad:
    """The load generator against a runtime subprocess; emitted events from ``/metrics``.
    ``rate`` 0: as fast as the runtime goes."""

    runtime: RuntimeProcess
    json_path: Path
    duration: float
    rate: float = RATE
    drain_timeout: float = DRAIN_TIMEOUT
    _proc: subprocess.Popen[str] | None = None
    _before: int = 0
    _emitted: int | None = None
    _started: float = 0.0

    @property
    def url(self) -> str:
        return self.runtime.url

    @property
    def token(self) -> str:
        return TokenAuthority(self.runtime.secret).issue("bench-monitor", Role.MONITOR)

    @property
    def source_pid(self) -> int:
        return self.runtime.pid

    def start(self) -> None:
        self._before = self.runtime.events_emitted()
        self._started = time.perf_counter()
        self._proc = subprocess.Popen(
            load_command(
                self.runtime, self.json_path, users=USERS, rate=self.rate, duration=self.duration
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def finished(self) -> bool:
        assert self._proc is not None
        if self._emitted is None:
            if self._proc.poll() is not None:
                self._emitted = self.runtime.events_emitted() - self._before
            elif time.perf_counter() - self._started > self.duration + 120:
                raise TimeoutError("the load generator did not finish")
        return self._emitted is not None

    def emitted(self) -> int:
        assert self._emitted is not None
        return self._emitted

    def close(self) -> dict[str, Any]:
        assert self._proc is not None
        stop_process(self._proc)
        output = self._proc.stdout.read() if self._proc.stdout is not None else ""
        wall = time.perf_counter() - self._started
        return read_load_run(self._proc, self.json_path, wall, output).report


@dataclass
class Replay:
    """``bare_ws replay``: every connection gets ``events`` events, ``REPLAY_DELAY`` s after
    it connected (the stream is already on its way when ``start`` is called)."""

    url: str
    source_pid: int
    events: int
    token: str = "replay-needs-no-token"
    drain_timeout: float = field(init=False)

    def __post_init__(self) -> None:
        self.drain_timeout = REPLAY_DELAY + self.events / RATE + DRAIN_TIMEOUT

    def start(self) -> None:
        pass

    def finished(self) -> bool:
        return True

    def emitted(self) -> int:
        return self.events

    def close(self) -> dict[str, Any]:
        return {"events": self.events, "rate": RATE}


# --- observers ----------------------------------------------------------------------------


class BareMonitorCounter(LoopThread):
    """Counts ``/monitor`` frames on its own thread; events apart from delivery reports."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__("bare-monitor-counter")
        self.url = url
        self.token = token
        self.connected = threading.Event()
        self.events = 0
        self.deliveries = 0
        self.first_event: float | None = None
        self.last_event = 0.0

    async def _run(self) -> None:
        async with connect(
            self.url + "/monitor",
            additional_headers={"Authorization": f"Bearer {self.token}"},
            compression=None,
            max_size=None,
            max_queue=None,
        ) as ws:
            self.connected.set()
            while True:
                raw = await ws.recv(decode=False)
                if raw.startswith(_DELIVERY_PREFIX):
                    self.deliveries += 1
                elif not raw.startswith(_ACK_PREFIX):
                    now = time.perf_counter()
                    if self.first_event is None:
                        self.first_event = now
                    self.last_event = now
                    self.events += 1


def _rate(count: int, first: float | None, last: float) -> float:
    if first is None or last <= first:
        return float("nan")
    return count / (last - first)


def _cpu(traffic: Traffic, ingest_thread: str, capture_pid: int | None = None) -> dict[str, float]:
    """CPU so far of the source, this process, its GUI and ingest threads, the monitor's
    capture process (it holds the WebSocket and records), and finished child processes (the load
    generator, once it exited)."""
    threads = {t.name: t.native_id for t in threading.enumerate()}
    ingest = threads.get(ingest_thread)
    capture = {"capture_process": capture_pid} if capture_pid is not None else {}
    return cpu_snapshot(
        {"source": traffic.source_pid, "monitor_process": os.getpid()} | capture,
        {"gui_thread": threading.main_thread().native_id or 0}
        | ({"ingest_thread": ingest} if ingest is not None else {}),
    )


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g} s")
        time.sleep(0.05)


def observe_bare(traffic: Traffic) -> dict[str, Any]:
    """The baseline: count the stream's frames with a bare websockets client."""
    counter = BareMonitorCounter(traffic.url, traffic.token).start()
    try:
        if not counter.connected.wait(CONNECT_TIMEOUT):
            raise RuntimeError("the bare /monitor client did not connect")
        before = _cpu(traffic, counter.name)
        traffic.start()
        try:
            _wait(traffic.finished, 300, "the source did not finish")
            emitted = traffic.emitted()
            deadline = time.monotonic() + traffic.drain_timeout
            while counter.events < emitted and time.monotonic() < deadline:
                time.sleep(0.05)
            cpu = cores_used(before, _cpu(traffic, counter.name))
        finally:
            source = traffic.close()
    finally:
        counter.stop()
    return {
        "events": counter.events,
        "deliveries": counter.deliveries,
        "emitted": emitted,
        "events_per_s": _rate(counter.events, counter.first_event, counter.last_event),
        "cores_used": cpu,
        "source": source,
    }


def _run_gui_until_drained(traffic: Traffic, stored: Callable[[], int]) -> None:
    """Run Qt's event loop (timers fire, views repaint, as in the app) until the source is
    done and the store holds every event it emitted (or ``drain_timeout`` passed)."""
    loop = QEventLoop()
    deadline: float | None = None
    error: list[BaseException] = []

    def check() -> None:
        nonlocal deadline
        try:
            if deadline is None and traffic.finished():
                deadline = time.monotonic() + traffic.drain_timeout
            if deadline is not None and (
                stored() >= traffic.emitted() or time.monotonic() > deadline
            ):
                loop.quit()
        except Exception as exc:  # a slot must not raise into Qt: hand it to the caller
            error.append(exc)
            loop.quit()

    poll = QTimer()
    poll.setInterval(100)
    poll.timeout.connect(check)
    poll.start()
    try:
        loop.exec()
    finally:
        poll.stop()
    if error:
        raise error[0]


def observe_monitor(traffic: Traffic) -> dict[str, Any]:
    """The monitor: a remote workspace under the main window, repainting as it ingests."""
    app = themed_application()
    clock = FrameClock()
    workspace = Workspace.remote(traffic.url, traffic.token)
    window = TimedMainWindow(workspace, clock)
    window.resize(*WINDOW_SIZE)
    window.show()
    gc.freeze()  # as run_app does once its window is up
    session = workspace.session
    store = session.store
    lags: list[float] = []
    taken = [0]

    def sample_lag(raw: bytes, _received_at: float) -> None:
        # called as the window's process takes each frame in (the ingest thread)
        taken[0] += 1
        if taken[0] % LAG_EVERY == 0:
            stamp = orjson.loads(raw).get("timestamp")
            if isinstance(stamp, float):
                lags.append((steady_time() - stamp) * 1000.0)

    session.frame_sinks.append(sample_lag)
    most_behind = 0
    try:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while session.status.state is not ConnectionState.CONNECTED:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the monitor did not connect: {session.status}")
            app.processEvents()
            time.sleep(0.01)
        total_before = store.total
        capture = workspace.ingest.capture_pid
        before = _cpu(traffic, workspace.ingest.name, capture)
        clock.recording = True
        traffic.start()

        def stored() -> int:
            nonlocal most_behind
            most_behind = max(most_behind, workspace.ingest.stats().behind)
            return store.total - total_before

        try:
            _run_gui_until_drained(traffic, stored)
            caught_up = steady_time()
            cpu = cores_used(before, _cpu(traffic, workspace.ingest.name, capture))
        finally:
            clock.recording = False
            source = traffic.close()
        with store.lock:
            received = store.total - total_before
            columns = store.columns(total_before)
            by_rule = Counter(r.finding.rule_id for r in store.findings)
        t = np.asarray(columns["t"], dtype=np.float64)
        first, last = (float(t[0]), float(t[-1])) if t.size else (None, 0.0)
        # receive times are steady_time(); frames are timed with perf_counter
        offset = steady_time() - time.perf_counter()
        frames = (
            clock.summary(first - offset + FRAME_WARMUP_S, last - offset)
            if first is not None
            else {}
        )
        lag = percentiles(sorted(lags))
    finally:
        window.close()  # stops the workspace (its ingest thread) too
        app.processEvents()
    return {
        "events": received,
        "emitted": traffic.emitted(),
        "events_per_s": _rate(received, first, last),
        "session_frames": session.frames,
        "findings_by_rule": dict(by_rule),
        "frames": frames,
        "display_lag_ms": lag,
        "most_frames_behind": most_behind,
        # from the capture receiving the last event to the window holding it
        "caught_up_s": max(0.0, caught_up - last) if first is not None else float("nan"),
        "cores_used": cpu,
        "source": source,
    }


# --- the benchmark ------------------------------------------------------------------------


def _figures(
    result: BenchmarkResult, prefix: str, bare: dict[str, Any], monitor: dict[str, Any]
) -> None:
    nan = float("nan")
    result.add(
        Figure(
            f"{prefix}.events_per_s",
            monitor["events_per_s"],
            "events/s",
            baseline=bare["events_per_s"],
            baseline_of="bare websockets client on the same stream, counting frames",
            # first to last event received: the source's own ramp up and down count too
            targets=(Target(">=", 0.95 * RATE),),
            note=f"{RATE:,}/s offered by the source; {monitor['events']:,} events",
        )
    )
    rules = monitor["findings_by_rule"]
    missing = monitor["emitted"] - monitor["events"]
    result.add(
        Figure(
            f"{prefix}.lost",
            float(missing + rules.get("AEM009", 0) + rules.get("AEM019", 0)),
            "events",
            targets=(Target("<=", 0),),
            note=(
                f"emitted {monitor['emitted']:,}, stored {monitor['events']:,}, "
                f"AEM009 {rules.get('AEM009', 0)}, AEM019 {rules.get('AEM019', 0)}"
            ),
        )
    )
    frames = monitor["frames"]
    interval = frames.get("interval_ms", {})
    result.add(Figure(f"{prefix}.frame_p50", interval.get("p50", nan), "ms"))
    result.add(
        Figure(
            f"{prefix}.frame_p95",
            interval.get("p95", nan),
            "ms",
            targets=(Target("<", 50),),
            note="interval between refresh-timer ticks (33 ms nominal)",
        )
    )
    result.add(Figure(f"{prefix}.fps", frames.get("fps", nan), "fps", targets=(Target(">=", 20),)))
    result.add(Figure(f"{prefix}.refresh_p95", frames.get("refresh_ms", {}).get("p95", nan), "ms"))
    result.add(Figure(f"{prefix}.paint_p95", frames.get("paint_ms", {}).get("p95", nan), "ms"))
    result.add(
        Figure(
            f"{prefix}.display_lag_p99",
            monitor["display_lag_ms"].get("p99", nan),
            "ms",
            targets=(Target("<", 2_000),),
            note=f"event timestamp to the window taking it in; p50 "
            f"{monitor['display_lag_ms'].get('p50', nan):.0f} ms",
        )
    )
    result.add(
        Figure(
            f"{prefix}.caught_up",
            monitor["caught_up_s"],
            "s",
            note=f"from the last event's arrival to the window holding it; at most "
            f"{monitor['most_frames_behind']:,} frames behind",
        )
    )


def _burst_figures(result: BenchmarkResult, monitor: dict[str, Any], bare: dict[str, Any]) -> None:
    rules = monitor["findings_by_rule"]
    missing = monitor["emitted"] - monitor["events"]
    result.add(
        Figure(
            "monitor_ingest.burst.events_per_s",
            monitor["events_per_s"],
            "events/s",
            baseline=bare["events_per_s"],
            baseline_of="bare websockets client, the same burst",
            note=f"the runtime's maximum for {BURST_S:g} s; {monitor['events']:,} events",
        )
    )
    result.add(
        Figure(
            "monitor_ingest.burst.lost",
            float(missing + rules.get("AEM009", 0) + rules.get("AEM019", 0)),
            "events",
            targets=(Target("<=", 0),),
            note=f"emitted {monitor['emitted']:,}, stored {monitor['events']:,}",
        )
    )
    result.add(
        Figure(
            "monitor_ingest.burst.caught_up",
            monitor["caught_up_s"],
            "s",
            targets=(Target("<=", CATCH_UP_LIMIT),),
            note=f"from the last event's arrival to every event shown; at most "
            f"{monitor['most_frames_behind']:,} frames behind",
        )
    )


def measure(quick: bool) -> BenchmarkResult:
    duration = 4.0 if quick else 10.0
    burst = 4.0 if quick else BURST_S
    replay_events = int(RATE * duration)
    result = BenchmarkResult("monitor_ingest")
    details = result.details
    details.update(users=USERS, rate_offered=RATE, duration_s=duration, burst_s=burst)
    with tempfile.TemporaryDirectory() as tmp, runtime_process() as runtime:
        details["runtime_bare"] = observe_bare(RuntimeLoad(runtime, Path(tmp) / "a.json", duration))
        details["runtime_monitor"] = observe_monitor(
            RuntimeLoad(runtime, Path(tmp) / "b.json", duration)
        )
        details["burst_bare"] = observe_bare(
            RuntimeLoad(runtime, Path(tmp) / "c.json", burst, rate=0)
        )
        details["burst_monitor"] = observe_monitor(
            RuntimeLoad(runtime, Path(tmp) / "d.json", burst, rate=0)
        )
    replay_args = ("replay", "--events", str(replay_events), "--rate", str(RATE))
    with bare_server_process(*replay_args, "--delay", str(REPLAY_DELAY)) as (url, pid):
        details["replay_bare"] = observe_bare(Replay(url, pid, replay_events))
        details["replay_monitor"] = observe_monitor(Replay(url, pid, replay_events))
    _figures(result, "monitor_ingest", details["runtime_bare"], details["runtime_monitor"])
    _burst_figures(result, details["burst_monitor"], details["burst_bare"])
    _figures(result, "monitor_ingest.replay", details["replay_bare"], details["replay_monitor"])
    return result
