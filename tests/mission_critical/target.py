"""The runtime the deployment gate drives: an in-process one (default), an in-process
cluster (``--cluster N``), or a running runtime at one URL or the nodes of one cluster at
several (``--runtime-url``).

``RuntimeTarget`` hides which one it is behind what the tests need: a URL for each new
connection, tokens for fresh users, a monitor token, the target's ``/healthz`` and
``/metrics``, and ``require_*`` checks that skip a test with a reason naming what the target
lacks. A skipped test always says why; nothing that cannot run on a target is silently
passed.

On a cluster, ``url_for`` spreads a test's connections over the nodes: each user's
connections take the nodes in turn (a user with two connections has one on each of two
nodes), and each new user or monitor starts one node further on than the previous one, so a
monitor and the user it watches are on different nodes. Where a test starts is fixed by its
id: a test run alone lands on the nodes it used in the whole suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import socket
import urllib.request
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import cycle
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from monitor.model.check_traffic import CHECK_USER_PREFIX
from runtime.auth import Role, TokenAuthority
from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime


@dataclass(frozen=True, slots=True)
class User:
    """A user id and a token whose ``sub`` is that id."""

    user_id: str
    token: str


def token_subject(token: str) -> str:
    """The ``sub`` of a token we were handed (the target verifies it, not us)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return str(claims["sub"])


def parse_tokens(values: list[str]) -> dict[str, str]:
    """``["alice=T1,bob=T2", "T3"]`` -> ``{"alice": "T1", "bob": "T2", sub(T3): "T3"}``."""
    tokens: dict[str, str] = {}
    for value in values:
        for item in filter(None, (part.strip() for part in value.replace(" ", ",").split(","))):
            user, sep, token = item.partition("=")
            # A JWT has no '=' (base64url without padding), so "user=token" is unambiguous.
            if not sep:
                user, token = token_subject(item), item
            tokens[user] = token
    return tokens


def metric_total(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` (matching ``labels``) in Prometheus text output."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def open_unread(url: str, token: str) -> ClientConnection:
    """A ``/ws`` connection that never reads past its first frames: a 4 KiB socket receive
    buffer and a one-message queue, so the runtime soon cannot write to it and must close
    it as a slow consumer. Abort its transport when done."""
    parts = urlsplit(url)
    family = socket.AF_INET6 if ":" in (parts.hostname or "") else socket.AF_INET
    sock = socket.socket(family)
    # before connecting: the receive window is negotiated in the handshake
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port or 80))
    return await connect(
        url.rstrip("/") + "/ws",
        sock=sock,
        additional_headers={"Authorization": f"Bearer {token}"},
        max_queue=1,  # websockets stops reading from the socket once a message waits
        compression=None,
        max_size=None,
        server_hostname=parts.hostname if parts.scheme == "wss" else None,
    )


def parse_urls(values: str | Iterable[str]) -> list[str]:
    """``"ws://a:1,ws://b:2"`` or ``["ws://a:1", "ws://b:2 ws://c:3"]`` -> the URLs in
    order (``--runtime-url`` repeated, comma- or space-separated; ``AEM_RUNTIME_URL``)."""
    items = [values] if isinstance(values, str) else list(values)
    return [
        url.strip().rstrip("/")
        for item in items
        for url in item.replace(" ", ",").split(",")
        if url.strip()
    ]


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise pytest.UsageError(f"--runtime-url must look like ws://host:port, got {url!r}")
    return ("https" if parts.scheme == "wss" else "http") + url[len(parts.scheme) :]


def _http_get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(eq=False)
class Node:
    """One process of the target: its URLs, its ``/healthz`` as last fetched, and the
    in-process runtime behind it, if any."""

    url: str
    embedded: EmbeddedRuntime | None = None
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return _http_url(self.url)

    @property
    def name(self) -> str:
        """``ws://127.0.0.1:8001 (node a)``: how messages name it."""
        node_id = self.health.get("node_id")
        return f"{self.url} (node {node_id})" if node_id else self.url

    def fetch_health(self) -> dict[str, Any]:
        """``GET /healthz`` (blocking); raises unless its status is ok."""
        health = json.loads(_http_get(self.http_url + "/healthz"))
        if not isinstance(health, dict) or health.get("status") != "ok":
            raise RuntimeError(f"{self.http_url}/healthz is not ok: {health!r}")
        self.health = health
        return health


class _Spread:
    """Which node each connection of one test goes to (see the module's docstring)."""

    def __init__(self, nodes: int, first: int = 0) -> None:
        self.nodes = nodes
        self._next_start = first
        self._start: dict[str, int] = {}
        self._opened: Counter[str] = Counter()
        self._anonymous = itertools.count()
        #: (who, node index) of every connection handed out, in order
        self.placed: list[tuple[str, int]] = []

    def node_for(self, who: str | None, label: str = "connection") -> int:
        """``who``'s next node; None: a new identity, shown as ``label #n``."""
        key = who if who is not None else f"{label} #{next(self._anonymous)}"
        if key not in self._start:
            self._start[key] = self._next_start
            self._next_start += 1
        index = (self._start[key] + self._opened[key]) % self.nodes
        self._opened[key] += 1
        self.placed.append((key, index))
        return index


class SuiteClient(AgentClient):
    """The suite's client: an ``AgentClient`` that knows how to wait until its stream has
    brought everything the target had made (``flush`` in ``assertions``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: on a cluster's observer stream: the frames of other nodes do not queue behind a
        #: ``pong`` of this node, so ``flush`` also awaits ``settle(client, timeout)``
        self.settle: Callable[[AgentClient, float], Awaitable[None]] | None = None


class RuntimeTarget:
    """What the suite runs against; made once per session by the ``target`` fixture."""

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        secret: str | None = None,
        tokens: dict[str, str] | None = None,
        monitor_token: str | None = None,
        embedded: EmbeddedRuntime | Sequence[EmbeddedRuntime] | None = None,
        clock_synced: bool = False,
    ) -> None:
        urls = parse_urls(url)
        if not urls:
            raise pytest.UsageError("--runtime-url must look like ws://host:port, got nothing")
        runtimes = [embedded] if isinstance(embedded, EmbeddedRuntime) else list(embedded or ())
        if runtimes and len(runtimes) != len(urls):
            raise ValueError(f"{len(urls)} URLs but {len(runtimes)} in-process runtimes")
        self.nodes = [Node(u, e) for u, e in itertools.zip_longest(urls, runtimes) if u]
        for node in self.nodes:
            _http_url(node.url)  # a usage error before anything is fetched
        twice = [u for u, n in Counter(urls).items() if n > 1]
        if twice:
            raise pytest.UsageError(f"--runtime-url: {', '.join(twice)} given twice")
        #: the first node's URL (every node's: ``urls``; for a new connection: ``url_for``)
        self.url = self.nodes[0].url
        self.http_url = self.nodes[0].http_url
        #: the (first) in-process runtime; all of them: ``require_in_process``
        self.embedded = runtimes[0] if runtimes else None
        self._runtimes = runtimes
        self._authority = TokenAuthority(secret) if secret else None
        self._tokens = dict(tokens or {})
        self._token_cycle = cycle(sorted(self._tokens.items())) if self._tokens else None
        self._monitor_token = monitor_token
        #: emit->receive latency compares the target's clock with ours: only meaningful on
        #: one machine (in-process, loopback) or when the operator says clocks are synced.
        self.clock_synced = (
            clock_synced
            or bool(runtimes)
            or all(_is_loopback(urlsplit(n.url).hostname or "") for n in self.nodes)
        )
        self._spread = _Spread(len(self.nodes))
        self.health: dict[str, Any] = self.fetch_health_now()
        self._check_one_runtime()

    @property
    def in_process(self) -> bool:
        return self.embedded is not None

    @property
    def cluster(self) -> bool:
        """Several nodes: connections are spread over them."""
        return len(self.nodes) > 1

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def __repr__(self) -> str:
        kind = "in-process" if self.in_process else "external"
        if self.cluster:
            return f"<RuntimeTarget {kind} cluster of {len(self.nodes)} {','.join(self.urls)}>"
        return f"<RuntimeTarget {kind} {self.url}>"

    def _check_one_runtime(self) -> None:
        """Several URLs must be the nodes of one cluster: the same ``instance_id`` (the
        cluster's epoch) and each its own ``node_id``."""
        if not self.cluster:
            return
        epochs = Counter(str(n.health.get("instance_id")) for n in self.nodes)
        first = str(self.nodes[0].health.get("instance_id"))
        common, most = epochs.most_common(1)[0]
        common = first if epochs[first] == most else common
        odd = [n for n in self.nodes if str(n.health.get("instance_id")) != common]
        if odd:
            named = " and ".join(
                f"{n.name} has instance_id {n.health.get('instance_id')!r}" for n in odd
            )
            rest = [n.name for n in self.nodes if n not in odd]
            verb = "has" if len(rest) == 1 else "have"
            raise pytest.UsageError(
                f"--runtime-url: these URLs are not one runtime: {named}, but "
                f"{', '.join(rest)} {verb} {common!r}. Give the nodes of one cluster (started "
                "with the same --broker and --broker-namespace)"
            )
        by_id: dict[str, list[Node]] = {}
        for node in self.nodes:
            by_id.setdefault(str(node.health.get("node_id")), []).append(node)
        same = [nodes for nodes in by_id.values() if len(nodes) > 1]
        if same:
            raise pytest.UsageError(
                f"--runtime-url: {' and '.join(n.url for n in same[0])} are one node (node_id "
                f"{same[0][0].health.get('node_id')!r}): give each node of the cluster once"
            )

    # --- spreading connections over the nodes ----------------------------------------

    def begin_test(self, test_id: str) -> None:
        """A new test: its connections are spread afresh, starting at a node fixed by its id."""
        self._spread = _Spread(len(self.nodes), zlib.crc32(test_id.encode()) % len(self.nodes))

    def url_for(self, who: User | str | None = None, *, label: str = "connection") -> str:
        """The URL of the node a new connection of ``who`` (a user, a user id; None: a
        connection of no user so far, e.g. a monitor, named ``label``) goes to."""
        key = who.user_id if isinstance(who, User) else who
        return self.nodes[self._spread.node_for(key, label)].url

    async def connect(
        self, user: User | None = None, *, monitor: bool = False, **kwargs: Any
    ) -> SuiteClient:
        """A new connection of ``user`` to ``/ws`` (or with ``monitor=True``, to ``/monitor``)
        on the node ``url_for`` picks; ``kwargs`` go to ``AgentClient.connect``."""
        if monitor:
            token, endpoint = self.monitor_token(), "/monitor"
        elif user is not None:
            token, endpoint = user.token, "/ws"
        else:
            raise TypeError("connect needs a user or monitor=True")
        url = self.url_for(None, label="monitor") if monitor else self.url_for(user)
        client = await SuiteClient.connect(url, token, endpoint=endpoint, **kwargs)
        assert isinstance(client, SuiteClient)
        if monitor and self.cluster:
            client.settle = self.settle_observer
        # the runtime can say when a run has ended: waits for one need no timeout
        client.run_active = self.run_active
        return client

    def placement(self) -> str:
        """Where the current test's connections went, one line each (for failure reports)."""
        return "\n".join(f"{who} -> {self.nodes[index].name}" for who, index in self._spread.placed)

    # --- identities -------------------------------------------------------------------

    def new_user(self, label: str = "user") -> User:
        """A user for one test: fresh and unique when tokens can be minted.

        Without a secret, the tokens handed to the suite are reused in turn; such a user's
        stream may already hold events of earlier tests (clients start from the ack's
        ``last_seq``, so that is fine for tests that need one user).
        """
        if self._authority is not None:
            user_id = f"{CHECK_USER_PREFIX}{label}-{uuid.uuid4().hex[:10]}"
            return User(user_id, self._authority.issue(user_id))
        if self._token_cycle is not None:
            user_id, token = next(self._token_cycle)
            return User(user_id, token)
        pytest.skip(
            f"{self}: no way to authenticate: pass --runtime-secret (AEM_RUNTIME_SECRET) or "
            "--runtime-token user=TOKEN (AEM_RUNTIME_TOKENS)"
        )

    def new_users(self, count: int, label: str = "user") -> list[User]:
        """``count`` distinct users (skips when the target's tokens cannot provide them)."""
        if self._authority is None and len(self._tokens) < count:
            pytest.skip(
                f"{self}: this test needs {count} distinct users but only "
                f"{len(self._tokens)} token(s) were given and no --runtime-secret to mint more"
            )
        return [self.new_user(f"{label}{i}") for i in range(count)]

    def mint(self, user_id: str, *, role: Role = Role.USER, ttl: float | None = None) -> str:
        """A token with chosen claims (e.g. an expired one); needs the target's secret."""
        authority = self.require_secret("it mints tokens with chosen claims")
        return authority.issue(user_id, role, ttl)

    def monitor_token(self) -> str:
        """A token for ``/monitor`` (skips when the suite has none and cannot mint one)."""
        if self._monitor_token is not None:
            return self._monitor_token
        if self._authority is not None:
            return self._authority.issue(f"mc-monitor-{uuid.uuid4().hex[:10]}", Role.MONITOR)
        pytest.skip(
            f"{self}: this test watches /monitor: pass --runtime-monitor-token "
            "(AEM_RUNTIME_MONITOR_TOKEN) or --runtime-secret"
        )

    # --- what the target offers -------------------------------------------------------

    def require_client_faults(self) -> None:
        """Skip unless the target honours ``options.faults`` in user messages (on a
        cluster: every node, as a run goes to whichever node its connection is on)."""
        refusing = [n for n in self.nodes if not n.health.get("client_faults")]
        if refusing:
            which = "" if not self.cluster else f" ({', '.join(n.name for n in refusing)})"
            pytest.skip(
                f"{self}: this test injects faults per message, but the target{which} does "
                "not honour options.faults (/healthz client_faults is false); start it with "
                "--allow-client-faults to run it"
            )

    def require_secret(self, why: str) -> TokenAuthority:
        if self._authority is None:
            pytest.skip(f"{self}: needs --runtime-secret (AEM_RUNTIME_SECRET) because {why}")
        return self._authority

    def require_in_process(self, why: str) -> list[EmbeddedRuntime]:
        """The in-process runtime: one, or every node of an in-process cluster (in this
        process, so a measurement of the process covers them all)."""
        if not self._runtimes:
            pytest.skip(f"{self}: runs only against the in-process runtime because {why}")
        return list(self._runtimes)

    def require_synced_clock(self) -> None:
        if not self.clock_synced:
            pytest.skip(
                f"{self}: emit->receive latency compares the target's clock with this "
                "machine's; pass --runtime-clock-synced if they are synchronised"
            )

    # --- HTTP endpoints ---------------------------------------------------------------

    def fetch_health_now(self) -> dict[str, Any]:
        """``GET /healthz`` of every node (blocking; for fixtures and synchronous code);
        returns the first node's. Raises unless every node's status is ok."""
        for node in self.nodes:
            node.fetch_health()
        return self.nodes[0].health

    async def fetch_health(self) -> dict[str, Any]:
        """``GET /healthz`` of every node off the event loop; also refreshes ``health``."""
        await asyncio.gather(*(asyncio.to_thread(n.fetch_health) for n in self.nodes))
        self.health = self.nodes[0].health
        return self.health

    @contextlib.asynccontextmanager
    async def unread_connection(self, user: User) -> AsyncIterator[ClientConnection]:
        """A ``/ws`` connection of ``user`` that never reads (``open_unread``), aborted on
        exit."""
        ws = await open_unread(self.url_for(user), user.token)
        try:
            yield ws
        finally:
            ws.transport.abort()

    async def run_active(self, run_id: str) -> bool | None:
        """Whether run ``run_id`` may still bring events; None when the target cannot tell.

        The in-process runtime knows each run; any other says how many runs are executing
        (``/healthz``), which answers only when it is none at all. On a cluster, a run
        executes on one node and its events reach the others through the broker: it is
        over for the suite when no node runs it and no node still holds records for the
        broker."""
        if self._runtimes:
            if any(r.server.factory.is_active(run_id) for r in self._runtimes):
                return True
            return any(_broker_pending(r) for r in self._runtimes)
        await self.fetch_health()
        idle = all(
            n.health.get("active_runs") == 0
            and not (n.health.get("broker") or {}).get("pending_records")
            for n in self.nodes
        )
        return False if idle else None

    async def fetch_metrics(self) -> str:
        """``GET /metrics`` (Prometheus text) off the event loop; on a cluster, every node's
        one after the other (``metric_total`` then sums over the nodes)."""
        return "".join(await self.fetch_metrics_by_node())

    async def fetch_metrics_by_node(self) -> list[str]:
        """Each node's ``GET /metrics``, in the order of ``nodes``."""
        texts = await asyncio.gather(
            *(asyncio.to_thread(_http_get, n.http_url + "/metrics") for n in self.nodes)
        )
        return [text.decode() for text in texts]

    # --- the observer stream of a cluster ---------------------------------------------

    async def settle_observer(self, monitor: AgentClient, timeout: float) -> None:
        """Wait until ``monitor`` has every observer frame any node made before this call.

        One node's ``pong`` follows only what that node queued to the connection; the other
        nodes' frames (their delivery reports, the events their runs emit) come through the
        broker. A probe run on every node goes through each node's queue behind what it
        made before; once the monitor has seen every probe run end, it has those frames.
        Twice: a delivery report made while the first probe was queued may follow it.
        """
        if not self.cluster:
            return
        self.require_secret(
            "on a cluster, the observer stream is settled with a probe run on every node"
        )
        users = self.new_users(len(self.nodes), "settle")
        probes = await asyncio.gather(
            *(
                AgentClient.connect(node.url, user.token, ack_timeout=timeout)
                for node, user in zip(self.nodes, users, strict=True)
            )
        )
        options = {"steps": 1, "tools": 0, "pace": 0}
        try:
            for round_ in (1, 2):
                runs = await asyncio.gather(
                    *(p.start_run(f"settle {round_}", "load", options=options) for p in probes)
                )

                def seen(runs: list[str] = runs) -> bool:
                    return all(monitor.completion(r) for r in runs) or monitor.closed is not None

                try:
                    await monitor.wait_until(seen, timeout)
                except TimeoutError:
                    missing = [
                        node.name
                        for node, run_id in zip(self.nodes, runs, strict=True)
                        if monitor.completion(run_id) is None
                    ]
                    raise AssertionError(
                        f"the observer stream did not bring a probe run's agent_completed from "
                        f"{', '.join(missing)} within {timeout:g}s: frames of other nodes do "
                        "not reach this node's monitors"
                    ) from None
        finally:
            await asyncio.gather(*(p.close() for p in probes))


def _broker_pending(runtime: EmbeddedRuntime) -> bool:
    """Whether an in-process cluster node holds records the broker has not taken yet."""
    broker = getattr(runtime.server.manager, "broker", None)
    return bool(broker is not None and broker.pending)
