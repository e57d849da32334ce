"""The capture process: reads the ``/monitor`` socket and records every frame, beside the app.

The app (``ingest.MonitorIngest``) starts one per session: ``python -m
monitor.services.capture_process`` (or the frozen app with ``CAPTURE_ARGUMENT``), its stdin and
stdout pipes to the app. It runs ``MonitorCapture`` into a ``Recorder``: every frame is in
the recording before the app's window does anything with it, and nothing the window does —
falling behind, stalling, painting — can slow the reading: the process shares nothing with
the window but the recording file and a few status lines.

Records on the pipes: ``kind`` (1 byte), payload length (4 bytes), a JSON payload.

- app → capture: ``START`` (what to watch, where to record); closing stdin stops it.
- capture → app: ``OPENED`` (the recording exists), ``STATUS`` (the connection's state and
  counters, on every change), ``PROGRESS`` (frames received and committed, the recorder's
  status; after commits, the newest superseding any not yet sent), ``ENDED`` (the
  recording is closed; the process exits).

The capture never waits for the app: its reports are written by a thread of their own, and
progress reports the app has not read yet are replaced by newer ones instead of piling up.
It ignores SIGINT — a terminal's Ctrl+C reaches the whole process group, and the app decides
when its capture ends — and takes SIGTERM as "stop": the recording is closed either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson

from monitor.model.clock import anchored_clock
from monitor.model.recording.format import RecordingMeta
from runtime.streams import ConnectionState
from runtime.streams.backoff import Backoff

from .capture import MonitorCapture, TokenMint, TokenSource
from .recording.recorder import Recorder
from .recording.storage import RetentionPolicy

log = logging.getLogger(__name__)

# app -> capture
START = b"s"
# capture -> app
OPENED, STATUS, PROGRESS, ENDED = b"o", b"t", b"p", b"e"

_HEADER = struct.Struct("!cI")
#: progress is reported at most this often (s): one report covers many commits
PROGRESS_INTERVAL = 0.1
#: how long stopping waits for the capture process to exit before killing it (s)
EXIT_TIMEOUT = 5.0
#: ``agent-monitor <CAPTURE_ARGUMENT>`` runs the capture (how a frozen app starts it)
CAPTURE_ARGUMENT = "__capture__"
#: thread switches in the capture: its socket reader and its recorder's writer take turns
#: on the interpreter lock each SQLite statement; the default 5 ms made each statement of a
#: busy stream wait that long
SWITCH_INTERVAL = 0.0005


def capture_command() -> list[str]:
    """How to start a capture process with this interpreter (or this frozen app)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, CAPTURE_ARGUMENT]
    return [sys.executable, "-m", __name__]


def encode_record(kind: bytes, payload: dict[str, Any]) -> bytes:
    body = orjson.dumps(payload)
    return _HEADER.pack(kind, len(body)) + body


# --- the capture process ------------------------------------------------------------------


def main() -> int:
    """The capture process: one ``START`` from stdin, then capture until stdin closes."""
    if not all(_is_pipe(fd) for fd in (0, 1)):
        print(
            "this is the monitor's capture process: the app starts it with pipes for its "
            "stdin and stdout",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="capture: %(levelname)s %(message)s")
    sys.setswitchinterval(SWITCH_INTERVAL)
    stdin = os.fdopen(0, "rb", buffering=0)
    reports = _Reports(os.fdopen(1, "wb", buffering=0))
    try:
        record = _read_record(stdin)
        if record is None or record[0] != START:
            return 0  # the app went away before asking for anything
        asyncio.run(_serve(orjson.loads(record[1]), stdin, reports))
    finally:
        reports.close()
    return 0


def _is_pipe(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _read_record(stream: IO[bytes]) -> tuple[bytes, bytes] | None:
    """The next record from a blocking stream, or None at its end."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    kind, length = _HEADER.unpack(header)
    payload = _read_exactly(stream, length)
    return None if payload is None else (kind, payload)


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    parts, left = [], size
    while left:
        try:
            chunk = stream.read(left)
        except OSError:
            return None
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


async def _serve(request: dict[str, Any], stdin: IO[bytes], reports: _Reports) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    progress_due = asyncio.Event()
    # the app closing our stdin (or dying) is the signal to stop; so is SIGTERM
    threading.Thread(
        target=_watch_stdin, args=(stdin, loop, stop), name="capture-stdin", daemon=True
    ).start()
    with contextlib.suppress(NotImplementedError, AttributeError):  # not on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)

    wall, monotonic = request["clock_anchor"]
    clock = anchored_clock((float(wall), float(monotonic)))
    recording = request["recording"]
    retention = recording.get("retention")

    def on_commit(_committed: int) -> None:  # the recorder's writer thread
        loop.call_soon_threadsafe(progress_due.set)

    recorder = Recorder(
        Path(recording["path"]),
        RecordingMeta(**recording["meta"]),
        retention=RetentionPolicy(**retention) if retention else None,
        clock=clock,
        on_commit=on_commit,
    ).start()
    reports.send(OPENED, {"recorder": recorder.status().to_dict()})

    capture: MonitorCapture | None = None

    def on_status(state: ConnectionState, detail: str) -> None:
        stats = asdict(capture.stats()) if capture is not None else {}
        # with how far the stream got: "caught up" is judged against it, not a stale count
        reports.send(
            STATUS,
            {"state": state.value, "detail": detail, "stats": stats, "received": recorder.received},
        )

    backoff = request["backoff"]
    capture = MonitorCapture(
        recorder,
        request["url"],
        _token(request),
        on_status=on_status,
        from_start=request["from_start"],
        backoff=Backoff(
            backoff["base"], backoff["cap"], factor=backoff["factor"], jitter=backoff["jitter"]
        ),
        probe_health=request["probe_health"],
        open_timeout=request["open_timeout"],
        clock=clock,
    )

    def progress() -> dict[str, Any]:
        return {
            "received": recorder.received,
            "committed": recorder.committed,
            "recorder": recorder.status().to_dict(),
        }

    async def report_progress() -> None:
        while True:
            await progress_due.wait()
            progress_due.clear()
            reports.progress(progress())
            await asyncio.sleep(PROGRESS_INTERVAL)  # later commits share the next report

    tasks = [
        asyncio.create_task(capture.run(), name="capture"),
        asyncio.create_task(stop.wait(), name="stop"),
        asyncio.create_task(report_progress(), name="progress"),
    ]
    try:
        await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # close the recording (what was received is committed, the WAL folded back in)
        # off the loop: the writer may take a moment
        status = await loop.run_in_executor(None, recorder.stop)
        reports.send(
            ENDED,
            {
                "received": recorder.received,
                "committed": recorder.committed,
                "recorder": status.to_dict(),
                "stats": asdict(capture.stats()),
            },
        )


def _token(request: dict[str, Any]) -> TokenSource:
    mint = request.get("mint")
    if mint is not None:
        return TokenMint(**mint)
    return str(request["token"])


def _watch_stdin(stdin: IO[bytes], loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Block on stdin until the app closes it (nothing more is ever sent after START)."""
    while _read_record(stdin) is not None:
        pass
    with contextlib.suppress(RuntimeError):  # the loop already finished
        loop.call_soon_threadsafe(stop.set)


class _Reports:
    """Records to the app, written by a thread of their own so the capture never waits for
    the app to read them; a newer progress report replaces one not yet written."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._queue: deque[bytes] = deque()
        self._progress: bytes | None = None
        self._closing = False
        self.broken = False  # the app went away
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._main, name="capture-reports", daemon=True)
        self._thread.start()

    def send(self, kind: bytes, payload: dict[str, Any]) -> None:
        with self._ready:
            self._queue.append(encode_record(kind, payload))
            self._ready.notify()

    def progress(self, payload: dict[str, Any]) -> None:
        with self._ready:
            self._progress = encode_record(PROGRESS, payload)
            self._ready.notify()

    def close(self, timeout: float = 2.0) -> None:
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._stream.close()

    def _main(self) -> None:
        while True:
            with self._ready:
                while not (self._queue or self._progress or self._closing):
                    self._ready.wait()
                records = list(self._queue)
                self._queue.clear()
                if self._progress is not None:
                    records.insert(0, self._progress)  # before a final ENDED, never after
                    self._progress = None
                closing = self._closing
            if not self.broken:
                try:
                    for record in records:
                        self._stream.write(record)
                except OSError:
                    self.broken = True  # the app is gone; nothing left to tell
            if closing and not records:
                return


# --- the app's side -------------------------------------------------------------------

#: what the app does with each report: ``(kind, payload)``; None once the process is gone
ReportListener = Callable[[bytes | None, dict[str, Any]], None]


class CaptureProcess:
    """A capture process and the pipes to it. Its reports are read by a thread of their
    own and handed to ``on_report`` as they come — whatever the rest of the app is doing,
    the connection's state and the count of frames received stay current."""

    def __init__(self, on_report: ReportListener) -> None:
        self._on_report = on_report
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, request: dict[str, Any]) -> None:
        """Start the process, send it ``request`` (``START``) and read its reports."""
        # stderr is the app's: the capture's warnings show in the app's log. A process
        # group of its own: a terminal's Ctrl+C is the app's to handle (it stops the
        # capture by closing its stdin), even before the capture's own handler is in place.
        process = subprocess.Popen(
            capture_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            process_group=0 if sys.platform != "win32" else None,
        )
        self._process = process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(encode_record(START, request))
        process.stdin.flush()
        self._reader = threading.Thread(
            target=self._read, args=(process.stdout,), name="capture-reports", daemon=True
        )
        self._reader.start()

    def _read(self, stdout: IO[bytes]) -> None:
        while True:
            record = _read_record(stdout)
            if record is None:
                self._on_report(None, {})
                return
            kind, payload = record
            self._on_report(kind, orjson.loads(payload))

    def request_stop(self) -> None:
        """Ask the capture to stop: it closes the connection and the recording, reports
        ``ENDED`` and exits."""
        process = self._process
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def stop(self, timeout: float = EXIT_TIMEOUT) -> int | None:
        """``request_stop`` and wait for the process to exit and its last report to be
        read; kill it if it does not exit. Returns its exit code. Blocks: call it off an
        event loop (``run_in_executor``)."""
        self.request_stop()
        process, reader = self._process, self._reader
        if process is None:
            return None
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("capture process %s did not exit; killing it", process.pid)
            process.kill()
            code = process.wait()
        if reader is not None:
            reader.join(timeout)
        if process.stdout is not None:
            process.stdout.close()
        self._process = self._reader = None
        return code


if __name__ == "__main__":
    sys.exit(main())
