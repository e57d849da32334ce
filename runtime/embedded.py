"""``EmbeddedRuntime``: a runtime on its own thread and event loop, inside another program.

The monitor embeds one so it works with no setup, and the mission-critical suite uses one as
its default target: the server then never shares an event loop (or its stalls) with the
client under test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .auth import Role
from .config import RuntimeConfig
from .server import RuntimeServer

T = TypeVar("T")


class EmbeddedRuntime:
    """Start with ``start()`` (blocks until listening), stop with ``stop()``."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config or RuntimeConfig(port=0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: RuntimeServer | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def server(self) -> RuntimeServer:
        if self._server is None:
            raise RuntimeError("embedded runtime is not running")
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def issue_token(self, user_id: str, role: Role | str = Role.USER) -> str:
        return self.server.issue_token(user_id, role)

    def start(self, timeout: float = 10.0) -> EmbeddedRuntime:
        if self.running:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._main, name="embedded-runtime", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"embedded runtime did not start within {timeout:g}s")
        if self._error is not None:
            raise RuntimeError(f"embedded runtime failed to start: {self._error}") from self._error
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            self._server = await RuntimeServer(self.config).start()
        except BaseException as exc:  # reported to start(), which raises it in the caller
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._server.stop()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the runtime's loop and wait for its result."""
        if self._loop is None:
            raise RuntimeError("embedded runtime is not running")
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel runs (each still completes on the wire), close connections, join."""
        if not self.running or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        assert self._thread is not None
        self._thread.join(timeout)
        self._thread = None
        self._server = None

    def __enter__(self) -> EmbeddedRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
