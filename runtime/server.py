"""The runtime's WebSocket server: ``/ws``, ``/monitor``, ``/healthz`` and ``/metrics``.

A thin I/O layer: it authenticates the handshake, turns frames into protocol messages with
the pure codec, and hands them to the manager and the engine factory. Bad input from one
client gets an ``error`` frame (or an HTTP status at the handshake) and touches nobody else.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from . import __version__
from .auth import AuthError, Principal, Role, TokenAuthority
from .cluster import build_manager
from .config import ALLOWED_ORIGINS_ENV, RuntimeConfig
from .connections import Subscriber
from .context import InvalidContextError, UserExecutionContext
from .engine import ConcurrencyLimitError, ExecutionEngineFactory
from .faults import FaultConfig
from .http_answers import SERVER_HEADER, http_response, method_not_allowed
from .log_context import correlated
from .manager import StreamsUnavailableError
from .metrics import CONTENT_TYPE_LATEST, RuntimeMetrics
from .origins import ORIGIN_RULE, OriginPolicy
from .protocol import Cancel, Ping, ProtocolError, Resume, UserMessage, decode_client_message
from .protocol.codec import encode_pong
from .protocol.endpoints import (
    HEALTH_PATH,
    METRICS_PATH,
    MONITOR_ENDPOINT,
    MONITOR_PATH,
    USER_PATH,
)
from .protocol.errors import ErrorCode
from .registry import AgentRegistry, UnknownAgentError
from .websockets_adapter import MethodCheckingConnection

log = logging.getLogger(__name__)

MAX_PACE = 10.0
#: how often a drain looks whether the connections' queued frames have been written
OUTBOX_POLL_S = 0.005


@dataclass(frozen=True, slots=True)
class _Admission:
    principal: Principal
    endpoint: str
    after_seq: int | None


class RuntimeServer:
    """One agent runtime: registry, engine factory, connection manager and the server."""

    def __init__(
        self, config: RuntimeConfig | None = None, registry: AgentRegistry | None = None
    ) -> None:
        self.config = config or RuntimeConfig()
        self.metrics = RuntimeMetrics()
        self.manager = build_manager(self.config, self.metrics, __version__)
        if registry is None:
            from .agents.catalog import build_default_registry

            registry = build_default_registry(self.config.tool_timeout)
        self.registry = registry
        self.registry.set_websocket_manager(self.manager)
        self.factory = ExecutionEngineFactory(self.registry, self.manager, self.config)
        self.manager.cancel_run = self.factory.cancel_run
        self.authority = TokenAuthority(self.config.secret)
        self.origins = OriginPolicy(self.config.allowed_origins)
        # Keyed weakly by connection: a handshake that fails after _process_request (no
        # upgrade, client gone) never reaches _handle, so nothing would pop it.
        self._admissions: weakref.WeakKeyDictionary[ServerConnection, _Admission] = (
            weakref.WeakKeyDictionary()
        )
        self._server: Server | None = None
        self._started_at = time.time()
        # Every open connection, so a drain can wait until their queued frames are written.
        self._subscribers: set[Subscriber] = set()
        #: stopping: user messages no longer start runs
        self._draining = False

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> RuntimeServer:
        cfg = self.config
        await self.manager.start()
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            process_request=self._process_request,
            create_connection=MethodCheckingConnection,
            compression=None,  # loopback and LAN: compression halves throughput
            max_size=cfg.max_frame_bytes,
            ping_interval=cfg.ping_interval,
            ping_timeout=cfg.ping_timeout,
            close_timeout=cfg.close_timeout,
            # no origins=: _process_request checks the Origin (normalised, and counted)
            server_header=SERVER_HEADER,
        )
        self._started_at = time.time()
        log.info("agent runtime %s listening on %s", __version__, self.url)
        return self

    async def stop(self, drain_timeout: float | None = None) -> bool:
        """Stop accepting connections, cancel every run (each still ends with
        ``agent_completed``), wait until those frames are written, then close every
        connection with 1001 (going away).

        With ``drain_timeout``, runs and writes still pending after that many seconds are
        given up on and the connections closed anyway, which takes at most the config's
        ``close_timeout`` more. Returns whether everything drained in time.
        """
        server = self._server
        if server is None:
            return True
        self._draining = True
        # Stops listening at once; a handshake still in progress is answered 503.
        server.close(close_connections=False)
        drained = await self._drain(drain_timeout)
        await self.manager.close_all()
        await self.manager.stop()
        try:
            # Bounded only when the whole stop is: a handshake that never completes holds
            # wait_closed until websockets' open timeout.
            async with asyncio.timeout(
                None if drain_timeout is None else self.config.close_timeout
            ):
                await server.wait_closed()
        except TimeoutError:
            log.warning("connections still closing after the drain: left to the process exit")
        self._server = None
        self._draining = False
        return drained

    async def _drain(self, timeout: float | None) -> bool:
        # shutdown() waits for every run: one that outlasts its cancel would hold it, and a
        # timeout's cancel with it, so it runs as a task of its own and the drain waits on
        # that task only as long as the timeout allows.
        runs_ended = asyncio.ensure_future(self.factory.shutdown())
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(runs_ended)
                return await self._outboxes_written()
        except TimeoutError:
            log.warning(
                "drain unfinished after %gs (%d run(s) still in progress): closing "
                "connections anyway",
                timeout,
                self.factory.active_runs(),
            )
            return False

    async def _outboxes_written(self) -> bool:
        """Wait until no open connection has frames queued (closing a connection drops its
        queue: a run's last ``agent_completed`` among them), at most ``close_timeout``: a
        client that stopped reading gets no longer than its close handshake would."""
        try:
            async with asyncio.timeout(self.config.close_timeout):
                # A poll: an outbox tells nobody when it empties, and this runs once, at exit.
                while self._frames_queued():  # noqa: ASYNC110
                    await asyncio.sleep(OUTBOX_POLL_S)
        except TimeoutError:
            log.warning("frames still queued to a client that is not reading: closing anyway")
            return False
        return True

    async def __aenter__(self) -> RuntimeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running")
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"ws://{host}:{self.port}"

    def issue_token(self, user_id: str, role: Role | str = Role.USER) -> str:
        return self.authority.issue(user_id, role)

    def _frames_queued(self) -> bool:
        return any(sub.unsent and not sub.closed for sub in self._subscribers)

    # --- HTTP side of the handshake ---------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.method != "GET":  # MethodCheckingConnection answers first, where it can
            return method_not_allowed(request.method)
        url = urlsplit(request.path)
        if url.path == HEALTH_PATH:
            return http_response(HTTPStatus.OK, orjson.dumps(self.health()), "application/json")
        if url.path == METRICS_PATH:
            return http_response(HTTPStatus.OK, self.metrics.render(), CONTENT_TYPE_LATEST)
        if url.path not in (USER_PATH, MONITOR_PATH):
            paths = ", ".join((USER_PATH, MONITOR_PATH, HEALTH_PATH, METRICS_PATH))
            return http_response(HTTPStatus.NOT_FOUND, f"not found: use {paths}\n".encode())
        origin = request.headers.get("Origin")
        if not self.origins.allows(origin):
            return self._refuse(HTTPStatus.FORBIDDEN, _origin_refusal(origin))
        query = parse_qs(url.query)
        token = _bearer(request.headers) or query.get("token", [""])[0] or None
        if not token:
            return self._refuse(
                HTTPStatus.UNAUTHORIZED,
                "missing token: send Authorization: Bearer <token> or ?token=",
            )
        try:
            principal = self.authority.verify(token)
        except AuthError as exc:
            return self._refuse(HTTPStatus.UNAUTHORIZED, str(exc))
        endpoint = url.path.lstrip("/")
        if endpoint == MONITOR_ENDPOINT and principal.role is not Role.MONITOR:
            return self._refuse(
                HTTPStatus.FORBIDDEN, "the /monitor stream needs a token with role 'monitor'"
            )
        unavailable = self.manager.unavailable
        if unavailable is not None:
            # The ack's last_seq and any resume need the shared streams: try another node.
            return http_response(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"this node cannot serve streams: {unavailable}\n".encode(),
            )
        after_seq: int | None = None
        if "after_seq" in query:
            try:
                after_seq = int(query["after_seq"][0])
                if after_seq < 0:
                    raise ValueError
            except ValueError:
                return self._bad_handshake("after_seq", "after_seq must be an integer >= 0")
        self._admissions[connection] = _Admission(principal, endpoint, after_seq)
        return None

    def _refuse(self, status: HTTPStatus, message: str) -> Response:
        """401 or 403: who or where the request came from is not allowed."""
        self.metrics.auth_failures.labels(str(status.value)).inc()
        log.warning("handshake refused (%d): %s", status.value, message)
        response = http_response(status, (message + "\n").encode())
        if status is HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Bearer realm="agent-runtime"'
        return response

    def _bad_handshake(self, reason: str, message: str) -> Response:
        """400: the request itself is malformed."""
        self.metrics.bad_handshakes.labels(reason).inc()
        log.warning("handshake refused (400): %s", message)
        return http_response(HTTPStatus.BAD_REQUEST, (message + "\n").encode())

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` reports, including which fault knobs this runtime honours."""
        unavailable = self.manager.unavailable
        return {
            "status": "ok" if unavailable is None else "degraded",
            "version": __version__,
            "protocol": 1,
            "node_id": self.manager.node_id,
            "instance_id": self.manager.instance_id,
            "uptime_s": round(time.time() - self._started_at, 3),
            "connections": self.manager.connection_count(),
            "monitors": self.manager.monitor_count,
            "active_runs": self.factory.active_runs(),
            "agents": self.registry.agent_names,
            "default_agent": self.registry.default_agent,
            "client_faults": self.config.allow_client_faults,
            "faults": self.config.active_faults(),
            "max_frame_bytes": self.config.max_frame_bytes,
            "replay_buffer": self.config.replay_buffer,
            "send_queue_limit": self.config.send_queue_limit,
            **self.manager.engine_health(),
        }

    # --- WebSocket side ---------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        admission = self._admissions.pop(ws)
        with correlated(user_id=admission.principal.user_id):
            await self._serve_connection(ws, admission)

    async def _serve_connection(self, ws: ServerConnection, admission: _Admission) -> None:
        principal = admission.principal
        try:
            if admission.endpoint == MONITOR_ENDPOINT:
                sub = await self.manager.open_monitor(principal.user_id, ws)
            else:
                sub = await self.manager.open_user(principal.user_id, ws)
        except StreamsUnavailableError as exc:
            await ws.close(CloseCode.TRY_AGAIN_LATER, f"cannot serve streams: {exc}"[:120])
            return
        with correlated(connection_id=sub.id):
            await self._converse(ws, sub, admission.after_seq)

    async def _converse(self, ws: ServerConnection, sub: Subscriber, after_seq: int | None) -> None:
        """A connection's life after its ack: the handshake's resume, then its messages."""
        if after_seq is not None:
            await self.manager.resume_requested(sub, after_seq)
        self._subscribers.add(sub)
        try:
            async for raw in ws:
                await self._on_frame(sub, raw)
        except ConnectionClosed:
            pass  # the client went away; its runs go on and their events wait for resume
        finally:
            self._subscribers.discard(sub)
            await self.manager.disconnect(sub)
            if sub.endpoint != MONITOR_ENDPOINT and not self._draining:
                self._log_left_mid_run(sub)

    def _log_left_mid_run(self, sub: Subscriber) -> None:
        """Once per run, when a user's last connection here closes while the run goes on:
        what to look for when a chat "froze". INFO, not WARNING: a user closing a tab is
        normal, and nothing is lost (the events wait for resume)."""
        if self.manager.connection_count(sub.user_id):
            return  # another connection of the user still receives the run
        for context in self.factory.runs_of(sub.user_id):
            with correlated(
                thread_id=context.thread_id, run_id=context.run_id, agent_name=context.agent_name
            ):
                log.info(
                    "user %s disconnected (connection %s) while run %s was in progress: its "
                    "events wait in the replay buffer for a resume",
                    sub.user_id,
                    sub.id,
                    context.run_id,
                )

    async def _on_frame(self, sub: Subscriber, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            self._reject(sub, "binary_not_supported", "send JSON text frames, not binary")
            return
        try:
            message = decode_client_message(raw)
        except ProtocolError as exc:
            self._reject(sub, exc.code, exc.message)
            return
        if isinstance(message, Ping):
            self.manager.send_raw(sub, encode_pong())
        elif isinstance(message, Resume):
            await self.manager.resume_requested(sub, message.after_seq)
        elif sub.endpoint == MONITOR_ENDPOINT:
            self._reject(sub, "read_only", "the /monitor stream accepts only resume and ping")
        elif isinstance(message, UserMessage):
            self._start_run(sub, message)
        elif isinstance(message, Cancel) and not self.factory.cancel(sub.user_id, message.run_id):
            self._reject(
                sub,
                "unknown_run",
                "no run of yours in progress with that id",
                ref=message.run_id,
            )

    def _reject(self, sub: Subscriber, code: str, message: str, ref: str | None = None) -> None:
        self.metrics.bad_frames.labels(code).inc()
        self.manager.send_error(sub, code, message, ref)

    def _start_run(self, sub: Subscriber, message: UserMessage) -> None:
        if self._draining:
            # A run started now would outlive the drain's cancelling and never complete on
            # the wire; the connection's 1001 close, moments away, tells the client instead.
            log.info("user message from %s ignored: the runtime is shutting down", sub.user_id)
            return
        unavailable = self.manager.unavailable
        if unavailable is not None:
            self._reject(
                sub, ErrorCode.BROKER_UNAVAILABLE, f"no run can start on this node: {unavailable}"
            )
            return
        options = dict(message.options)
        faults: FaultConfig | None = None
        if "faults" in options:
            if not self.config.allow_client_faults:
                self._reject(
                    sub,
                    "faults_disabled",
                    "this runtime does not accept "
                    "options.faults (start it with --allow-client-faults)",
                )
                return
            spec = options.pop("faults")
            try:
                if not isinstance(spec, dict):
                    raise ValueError("options.faults must be an object")
                faults = self.config.faults.merged(spec)
            except (TypeError, ValueError) as exc:
                self._reject(sub, "invalid_field", f"options.faults: {exc}")
                return
        pace = options.get("pace", self.config.pace)
        if isinstance(pace, bool) or not isinstance(pace, int | float) or not 0 <= pace <= MAX_PACE:
            self._reject(sub, "invalid_field", f"options.pace must be a number 0..{MAX_PACE:g}")
            return
        options["pace"] = pace
        agent = message.agent or self.registry.default_agent
        try:
            self.registry.get(agent)
            context = UserExecutionContext.for_message(sub.user_id, agent, message.thread_id)
            self.factory.start(context, message.text, faults, options)
        except UnknownAgentError as exc:
            self._reject(sub, "unknown_agent", str(exc), ref=agent)
        except InvalidContextError as exc:
            self._reject(sub, "invalid_field", str(exc))
        except ConcurrencyLimitError as exc:
            self._reject(sub, "too_many_runs", str(exc))


def _bearer(headers: Headers) -> str | None:
    value = headers.get("Authorization")
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None


def _origin_refusal(origin: str | None) -> str:
    """Which origin was refused and how to allow it (``origin`` is the client's own text:
    cut short, and quoted so it cannot pass for the server's words)."""
    shown = (origin or "")[:200]
    return (
        f"origin {shown!r} is not allowed to open a WebSocket here; to allow it, start the "
        f"runtime with --allowed-origin {shown} (repeatable) or add it to "
        f"{ALLOWED_ORIGINS_ENV} (comma-separated). Matching: {ORIGIN_RULE}."
    )
