"""``agent-runtime serve`` as a real process, for the tests of the CLI and of stopping it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tests.conftest import ROOT, seconds

LISTENING = re.compile(r"listening on (ws://127\.0\.0\.1:(\d+))")
#: the environment without the runtime's own settings, so only the test's arguments count
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    url: str
    log: list[str] = field(default_factory=list)

    async def interrupt(self) -> int:
        """Ctrl-C; return the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.proc.wait(), seconds(10))


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    """Keep reading the server's log so its pipe never fills up."""
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


@contextlib.asynccontextmanager
async def serve(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Served]:
    """``python -m runtime serve --port 0 ...``, up once it logs its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime",
        "serve",
        "--port",
        "0",
        *args,
        cwd=ROOT,
        env=CLEAN_ENV if env is None else env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    log: list[str] = []
    collector: asyncio.Task[None] | None = None
    try:
        url = None
        async with asyncio.timeout(seconds(20)):
            while url is None:
                raw = await proc.stderr.readline()
                if not raw:
                    code = await proc.wait()
                    raise AssertionError(f"serve exited ({code}) before listening:\n{''.join(log)}")
                line = raw.decode(errors="replace")
                log.append(line)
                if match := LISTENING.search(line):
                    url = match.group(1)
        collector = asyncio.create_task(_collect(proc.stderr, log))
        yield Served(proc, url, log)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if collector is not None:
            await asyncio.wait_for(collector, seconds(5))
