"""An in-process cluster for the gate (``--cluster N``): N ``EmbeddedRuntime`` nodes, each
on its own thread and event loop, sharing one Redis under a namespace of their own.

The Redis is ``AEM_REDIS_URL``'s when that is set (CI starts one), else a private
``redis-server`` this cluster starts and stops; never a fake. The nodes share one secret, so
a token minted for one is valid on all.
"""

from __future__ import annotations

import contextlib
import secrets

import pytest

from runtime.embedded import EmbeddedRuntime
from tests.conftest import test_config
from tests.redis_server import (
    INSTALL_HINT,
    REDIS_URL_ENV,
    RedisServer,
    redis_binary,
    shared_redis_url,
)


class InProcessCluster:
    """Start with ``start()`` (or ``with``); ``nodes`` are the running runtimes."""

    def __init__(self, size: int, redis_url: str | None = None) -> None:
        if size < 1:
            raise ValueError(f"a cluster needs at least one node, not {size}")
        self.size = size
        self.secret = secrets.token_hex(32)
        self.namespace = "mc" + secrets.token_hex(6)
        self.nodes: list[EmbeddedRuntime] = []
        self._redis_url = redis_url
        self._private: RedisServer | None = None

    @property
    def redis_url(self) -> str:
        if self._redis_url is None:
            raise RuntimeError("the cluster is not running")
        return self._redis_url

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> InProcessCluster:
        if self._redis_url is None:
            self._redis_url = shared_redis_url()
        if self._redis_url is None:
            if redis_binary() is None:
                raise pytest.UsageError(
                    f"--cluster needs a Redis: set {REDIS_URL_ENV}=redis://HOST:PORT/DB or "
                    f"{INSTALL_HINT}"
                )
            self._private = RedisServer().start()
            self._redis_url = self._private.url
        base = test_config(
            secret=self.secret, broker=self._redis_url, broker_namespace=self.namespace
        )
        try:
            for index in range(self.size):
                config = base.with_overrides(node_id=f"mc-node{index}")
                self.nodes.append(EmbeddedRuntime(config).start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        self.nodes = []
        if self._private is not None:
            self._private.stop()
            self._private = None
            self._redis_url = None
        elif self._redis_url is not None:
            self._forget_namespace(self._redis_url)

    def _forget_namespace(self, url: str) -> None:
        """Delete this cluster's keys from a shared Redis (they would expire, in a day)."""
        from redis import Redis
        from redis.exceptions import RedisError

        with contextlib.suppress(RedisError, OSError):
            client = Redis.from_url(url, socket_timeout=5)
            try:
                keys = list(client.scan_iter(match=f"{self.namespace}:*", count=1000))
                for start in range(0, len(keys), 1000):
                    client.delete(*keys[start : start + 1000])
            finally:
                client.close()

    def __enter__(self) -> InProcessCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
