"""Subprocesses the benchmarks measure: a runtime, the load generator, the bare baseline.

Every process is started by a context manager (or a function that waits for it) and is
terminated in a ``finally``: a benchmark that fails half-way leaves nothing running. Output
pipes are drained by a thread, so a chatty process can never block on a full pipe.
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

#: the runtime's log line that names its URL (``agent runtime 0.1.0 listening on ws://…``)
LISTENING = re.compile(r"listening on (ws://\S+)")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages (how busy the machine was)."""
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def uptime_line() -> str:
    """What ``uptime`` prints, or the load averages if it is not installed."""
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*load_average())


class _PipeDrain(threading.Thread):
    """Reads a text pipe to its end, keeps the last lines, and reports the first match."""

    def __init__(self, pipe: IO[str], pattern: re.Pattern[str] | None, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._pipe = pipe
        self._pattern = pattern
        self.tail: deque[str] = deque(maxlen=50)
        self.match: re.Match[str] | None = None
        self.matched = threading.Event()

    def run(self) -> None:
        for line in self._pipe:
            self.tail.append(line.rstrip("\n"))
            if self._pattern is not None and self.match is None:
                found = self._pattern.search(line)
                if found is not None:
                    self.match = found
                    self.matched.set()
        self.matched.set()  # the pipe closed: whoever waits stops waiting


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@dataclass
class RuntimeProcess:
    """An ``agent-runtime serve`` subprocess on 127.0.0.1, port 0, with its own secret."""

    proc: subprocess.Popen[str]
    url: str
    secret: str
    _stderr: _PipeDrain

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def http_url(self) -> str:
        return "http" + self.url.removeprefix("ws")

    def log_tail(self) -> str:
        return "\n".join(self._stderr.tail)

    def stop(self) -> None:
        """SIGTERM (SIGKILL if it does not exit in time); its log pipe is read to the end."""
        stop_process(self.proc)
        self._stderr.join(STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL: the process ends at once, with nothing flushed or handed over."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)
        self._stderr.join(STOP_TIMEOUT)

    def metrics(self) -> dict[str, float]:
        """``GET /metrics`` as ``{'name{labels}': value}`` (samples only, no comments)."""
        with urllib.request.urlopen(self.http_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def events_emitted(self) -> int:
        """Events the runtime has emitted (every type), from ``/metrics``."""
        return int(
            sum(v for k, v in self.metrics().items() if k.startswith("aem_events_emitted_total"))
        )


def start_runtime(
    *extra_args: str, pace: float = 0.0, port: int = 0, secret: str | None = None
) -> RuntimeProcess:
    """Start ``agent-runtime serve --port PORT --pace PACE`` and wait until it listens (stop
    it with ``RuntimeProcess.stop``; ``runtime_process`` does that for a ``with`` block).
    ``secret``: the token secret (default: a new random one); ``port`` 0 picks a free one."""
    secret = secret or secrets.token_hex(32)
    cmd = [
        sys.executable,
        "-m",
        "runtime",  # the ``agent-runtime`` entry point, independent of PATH
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--pace",
        f"{pace:g}",
        "--secret",
        secret,
        *extra_args,
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    drain = _PipeDrain(proc.stderr, LISTENING, "runtime-stderr")
    drain.start()
    if not drain.matched.wait(START_TIMEOUT) or drain.match is None:
        stop_process(proc)
        drain.join(STOP_TIMEOUT)
        raise RuntimeError(
            f"the runtime did not report its URL within {START_TIMEOUT:g} s "
            f"(exit code {proc.poll()}):\n" + "\n".join(drain.tail)
        )
    return RuntimeProcess(proc, drain.match.group(1), secret, drain)


@contextmanager
def runtime_process(
    *extra_args: str, pace: float = 0.0, port: int = 0, secret: str | None = None
) -> Iterator[RuntimeProcess]:
    """Run ``agent-runtime serve --port PORT --pace PACE`` until the ``with`` block ends."""
    runtime = start_runtime(*extra_args, pace=pace, port=port, secret=secret)
    try:
        yield runtime
    finally:
        runtime.stop()


def broker_args(url: str, namespace: str, node_id: str) -> tuple[str, ...]:
    """The ``serve`` options that make a runtime a node of the cluster ``namespace`` in the
    Redis at ``url`` (the Redis stream engine)."""
    return ("--broker", url, "--broker-namespace", namespace, "--node-id", node_id)


@dataclass
class LoadRun:
    """The load generator's report (``LoadReport`` as JSON) plus how its process ended."""

    report: dict[str, Any]
    returncode: int
    wall_s: float
    output: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return float(self.report["throughput_eps"])

    @property
    def latency_ms(self) -> dict[str, float]:
        return dict(self.report.get("latency_ms", {}))

    @property
    def lost(self) -> int:
        return int(self.report["lost"])

    @property
    def defects(self) -> int:
        """Events lost, duplicated or out of order: zero in a correct run."""
        return self.lost + int(self.report["duplicated"]) + int(self.report["out_of_order"])


class LoadTarget(Protocol):
    """Where a load generator connects: a runtime's ``ws://`` URL and its token secret."""

    @property
    def url(self) -> str: ...

    @property
    def secret(self) -> str: ...


def load_command(
    runtime: LoadTarget,
    json_path: Path,
    *,
    users: int,
    rate: float,
    duration: float,
    run_seconds: float = 1.0,
) -> list[str]:
    """``agent-runtime load`` (``runtime.load_generator.run_load``) against ``runtime``."""
    return [
        sys.executable,
        "-m",
        "runtime",
        "load",
        "--url",
        runtime.url,
        "--users",
        str(users),
        "--rate",
        f"{rate:g}",
        "--duration",
        f"{duration:g}",
        "--secret",
        runtime.secret,
        "--json",
        str(json_path),
        "--run-seconds",
        f"{run_seconds:g}",
    ]


def run_load_process(
    runtime: RuntimeProcess, json_path: Path, *, users: int, rate: float, duration: float
) -> LoadRun:
    """Run the load generator in a subprocess to completion and read its JSON report."""
    return run_load_processes([(runtime, json_path, users)], rate=rate, duration=duration)[0]


def run_load_processes(
    targets: Sequence[tuple[RuntimeProcess, Path, int]], *, rate: float, duration: float
) -> list[LoadRun]:
    """Run one load generator per ``(runtime, json_path, users)`` at once (each with users
    of its own; ``rate`` is each one's) and read their reports, in the same order. Their
    output goes to ``json_path`` with ``.log`` for a suffix: no pipe can fill and block one
    while another is waited for."""
    started = time.perf_counter()
    procs: list[subprocess.Popen[str]] = []
    logs = [json_path.with_suffix(".log") for _, json_path, _ in targets]
    try:
        for (runtime, json_path, users), log_path in zip(targets, logs, strict=True):
            with log_path.open("w") as log_file:
                procs.append(
                    subprocess.Popen(
                        load_command(runtime, json_path, users=users, rate=rate, duration=duration),
                        stdin=subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        deadline = time.monotonic() + duration + 90
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            stop_process(proc)
    wall = time.perf_counter() - started
    return [
        read_load_run(proc, json_path, wall, log_path.read_text())
        for proc, (_, json_path, _), log_path in zip(procs, targets, logs, strict=True)
    ]


def read_load_run(
    proc: subprocess.Popen[str], json_path: Path, wall_s: float, output: str
) -> LoadRun:
    """The report of a finished load-generator process; raises if it wrote none."""
    if not json_path.exists():
        raise RuntimeError(
            f"the load generator wrote no report (exit code {proc.returncode}):\n{output[-2000:]}"
        )
    report = json.loads(json_path.read_text())
    return LoadRun(report, proc.returncode if proc.returncode is not None else -1, wall_s, output)


@contextmanager
def bare_server_process(*args: str) -> Iterator[tuple[str, int]]:
    """A ``tests.benchmarks.bare_ws`` server (``serve`` or ``replay …``); yields URL and pid."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.bare_ws", *(args or ("serve",))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    drain = _PipeDrain(proc.stdout, LISTENING, "bare-server-output")
    drain.start()
    try:
        if not drain.matched.wait(START_TIMEOUT) or drain.match is None:
            raise RuntimeError(
                f"the bare server did not report its URL (exit code {proc.poll()}):\n"
                + "\n".join(drain.tail)
            )
        yield drain.match.group(1), proc.pid
    finally:
        stop_process(proc)
        drain.join(STOP_TIMEOUT)


def run_bare_clients(
    url: str, *, clients: int, duration: float, check: bool = False
) -> dict[str, Any]:
    """Run the bare counting clients (``bare_ws count``) in a subprocess; their JSON result.
    ``check``: the clients decode and validate every frame, like the load generator's."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.bare_ws",
            "count",
            "--url",
            url,
            "--clients",
            str(clients),
            "--duration",
            f"{duration:g}",
            *(["--check"] if check else []),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        out, err = proc.communicate(timeout=duration + 60)
    finally:
        stop_process(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"bare clients failed (exit code {proc.returncode}):\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU time (user + system) a process, or one of its threads (native id), has used so
    far, from ``/proc`` (Linux)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = Path(path).read_text().rpartition(")")[2].split()
    # after the command come state [0] … utime [11], stime [12] (man 5 proc, fields 14, 15)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of every child process waited for so far (a finished subprocess's share)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_snapshot(processes: dict[str, int], threads: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of named processes (pids), threads of this process (native ids)
    and finished child processes (``children``), with the ``wall`` clock."""
    out = {name: cpu_seconds(pid) for name, pid in processes.items()}
    out |= {name: cpu_seconds(os.getpid(), tid) for name, tid in threads.items()}
    out["children"] = children_cpu_seconds()
    out["wall"] = time.perf_counter()
    return out


def cores_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Average cores each one used between two snapshots (1.0 = one core flat out)."""
    wall = after["wall"] - before["wall"]
    return {
        name: round((after[name] - before[name]) / wall, 2)
        for name in before
        if name != "wall" and name in after
    }
