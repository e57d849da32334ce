"""A real ``redis-server`` for the tests of the Redis engine: never a fake.

``AEM_REDIS_URL`` names one already running (``.ci/run`` starts one); otherwise each test
session starts its own on a free port with nothing saved to disk. Without a
``redis-server`` on the PATH the Redis tests are skipped with a line saying how to get one,
unless ``AEM_REQUIRE_REDIS`` is set (CI), where that is a failure.

Tests isolate themselves by namespace (every cluster a test makes has its own), so sharing
one server is safe; a test that must lose Redis's data or stop it starts a private one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REDIS_URL_ENV = "AEM_REDIS_URL"
REQUIRE_REDIS_ENV = "AEM_REQUIRE_REDIS"
INSTALL_HINT = "install redis-server (Debian: apt-get install redis-server)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str | None:
    return shutil.which("redis-server")


@dataclass
class RedisServer:
    """A ``redis-server`` process on 127.0.0.1 that this test session owns."""

    port: int = field(default_factory=free_port)
    #: keep the data across a restart (an append-only file, synced on every write)
    persist: bool = False
    process: subprocess.Popen[bytes] | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aem-redis-")))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError(f"no redis-server on the PATH: {INSTALL_HINT}")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persist else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)  # a process starting: nothing to wait on but its port
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it: without ``persist`` everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self, timeout: float = 10.0) -> None:
        """Kill it and start it on the same port: empty unless ``persist``."""
        self.stop()
        self.start(timeout)


def shared_redis_url() -> str | None:
    """The URL of the Redis every test may share, from the environment (or None)."""
    return os.environ.get(REDIS_URL_ENV) or None


def redis_required() -> bool:
    return bool(os.environ.get(REQUIRE_REDIS_ENV))
