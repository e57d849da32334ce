"""monitor_cpu: what the app costs left open — the whole app, every process of it.

Two ways the monitor sits on a second screen all day, each measured over ``WINDOW`` seconds
after a warm-up, as CPU time of the app's process and its children (the capture process)
from ``/proc``:

- **demo**: ``agent-monitor`` as launched with no arguments — its embedded runtime, the demo
  traffic and the window, all counted (about 45 events/s).
- **idle**: ``agent-monitor --connect`` to a runtime process that has no traffic (the
  runtime's own CPU is not counted: it is not the app).

The app renders offscreen unless ``DISPLAY`` names an X server (then it draws there, as a
user sees it; under Xvfb that costs more than offscreen). Its recordings and settings go to
a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runtime.auth import Role, TokenAuthority

from .processes import runtime_process, stop_process
from .results import BenchmarkResult, Figure, Target

ROOT = Path(__file__).resolve().parents[2]
WARM_UP = 15.0
WINDOW = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its children, live and reaped."""
    total = 0.0
    for proc in _tree(pid):
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat (11-14 after the name)
        total += sum(int(v) for v in fields[11:15]) / CLOCK_TICKS
    return total


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path("/proc").iterdir():
        if not task.name.isdigit():
            continue
        try:
            ppid = int((task / "stat").read_text().rpartition(")")[2].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.extend(_tree(int(task.name)))
    return found


def app_cpu(args: list[str], folder: Path, *, warm_up: float, window: float) -> dict[str, float]:
    """Cores used by ``agent-monitor ARGS`` over ``window`` seconds after ``warm_up``."""
    env = {
        **os.environ,
        "AGENT_MONITOR_RECORDINGS_DIR": str(folder / "recordings"),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "XDG_DATA_HOME": str(folder / "data"),
    }
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(warm_up)  # the app settles: window up, connection made, traffic flowing
        if proc.poll() is not None:
            raise RuntimeError(f"agent-monitor exited early ({proc.returncode})")
        before, started = process_tree_cpu(proc.pid), time.monotonic()
        time.sleep(window)
        after, ended = process_tree_cpu(proc.pid), time.monotonic()
        rss = _rss_mb(proc.pid)
    finally:
        stop_process(proc)
    return {"cores": (after - before) / (ended - started), "rss_mb": rss}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(quick: bool) -> BenchmarkResult:
    window = 15.0 if quick else WINDOW
    warm_up = 8.0 if quick else WARM_UP
    result = BenchmarkResult("monitor_cpu")
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        demo = app_cpu([], Path(tmp) / "demo", warm_up=warm_up, window=window)
        with runtime_process() as runtime:
            token = TokenAuthority(runtime.secret).issue("bench-idle", Role.MONITOR)
            idle = app_cpu(
                ["--connect", runtime.url, "--token", token],
                Path(tmp) / "idle",
                warm_up=warm_up,
                window=window,
            )
    display = os.environ.get("DISPLAY") or "offscreen"
    result.details.update(demo=demo, idle=idle, window_s=window, display=display)
    result.add(
        Figure(
            "monitor_cpu.demo",
            100 * demo["cores"],
            "% of a core",
            targets=(Target("<=", 10),),
            note=f"agent-monitor with its embedded runtime and demo traffic; {display}; "
            f"{window:g} s",
        )
    )
    result.add(
        Figure(
            "monitor_cpu.idle",
            100 * idle["cores"],
            "% of a core",
            targets=(Target("<=", 2),),
            note=f"connected to a runtime with no traffic; {display}; {window:g} s",
        )
    )
    return result
