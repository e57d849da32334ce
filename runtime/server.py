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
from websockets.http11 import Request, Response
from websockets.typing import Origin

from . import __version__
from .auth import AuthError, Principal, Role, TokenAuthority
from .config import RuntimeConfig
from .connections import MONITOR_ENDPOINT, Subscriber, WebSocketManager
from .context import InvalidContextError, UserExecutionContext
from .engine import ConcurrencyLimitError, ExecutionEngineFactory
from .faults import FaultConfig
from .metrics import CONTENT_TYPE_LATEST, RuntimeMetrics
from .protocol import Cancel, Ping, ProtocolError, Resume, UserMessage, decode_client_message
from .protocol.codec import encode_pong
from .registry import AgentRegistry, UnknownAgentError

log = logging.getLogger(__name__)

MAX_PACE = 10.0


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
        self.manager = WebSocketManager(
            self.metrics,
            send_queue_limit=self.config.send_queue_limit,
            replay_buffer=self.config.replay_buffer,
            monitor_replay_buffer=self.config.monitor_replay_buffer,
            server_version=__version__,
        )
        if registry is None:
            from .agents.catalog import build_default_registry

            registry = build_default_registry(self.config.tool_timeout)
        self.registry = registry
        self.registry.set_websocket_manager(self.manager)
        self.factory = ExecutionEngineFactory(self.registry, self.manager, self.config)
        self.authority = TokenAuthority(self.config.secret)
        # Keyed weakly by connection: a handshake that fails after _process_request (bad
        # Origin, no upgrade, client gone) never reaches _handle, so nothing would pop it.
        self._admissions: weakref.WeakKeyDictionary[ServerConnection, _Admission] = (
            weakref.WeakKeyDictionary()
        )
        self._server: Server | None = None
        self._started_at = time.time()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> RuntimeServer:
        cfg = self.config
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            process_request=self._process_request,
            compression=None,  # loopback and LAN: compression halves throughput
            max_size=cfg.max_frame_bytes,
            ping_interval=cfg.ping_interval,
            ping_timeout=cfg.ping_timeout,
            close_timeout=cfg.close_timeout,
            origins=[*map(Origin, cfg.allowed_origins), None] if cfg.allowed_origins else None,
            server_header=f"agent-runtime/{__version__}",
        )
        self._started_at = time.time()
        log.info("agent runtime %s listening on %s", __version__, self.url)
        return self

    async def stop(self) -> None:
        """Cancel runs (each still ends with ``agent_completed``), then close connections."""
        if self._server is None:
            return
        self._server.close(close_connections=False)
        await self.factory.shutdown()
        await self.manager.close_all()
        await self._server.wait_closed()
        self._server = None

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

    # --- HTTP side of the handshake ---------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            return _response(HTTPStatus.OK, orjson.dumps(self.health()), "application/json")
        if url.path == "/metrics":
            return _response(HTTPStatus.OK, self.metrics.render(), CONTENT_TYPE_LATEST)
        if url.path not in ("/ws", "/monitor"):
            return _response(
                HTTPStatus.NOT_FOUND, b"not found: use /ws, /monitor, /healthz, /metrics\n"
            )
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
        after_seq: int | None = None
        if "after_seq" in query:
            try:
                after_seq = int(query["after_seq"][0])
                if after_seq < 0:
                    raise ValueError
            except ValueError:
                return self._refuse(HTTPStatus.BAD_REQUEST, "after_seq must be an integer >= 0")
        self._admissions[connection] = _Admission(principal, endpoint, after_seq)
        return None

    def _refuse(self, status: HTTPStatus, message: str) -> Response:
        self.metrics.auth_failures.labels(str(status.value)).inc()
        log.warning("handshake refused (%d): %s", status.value, message)
        response = _response(status, (message + "\n").encode())
        if status is HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = 'Bearer realm="agent-runtime"'
        return response

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` reports, including which fault knobs this runtime honours."""
        return {
            "status": "ok",
            "version": __version__,
            "protocol": 1,
            "instance_id": self.manager.instance_id,
            "uptime_s": round(time.time() - self._started_at, 3),
            "connections": self.manager.connection_count(),
            "monitors": self.manager.monitor_count,
            "active_runs": self.factory.active_runs(),
            "agents": self.registry.agent_names,
            "default_agent": self.registry.default_agent,
            "client_faults": self.config.allow_client_faults,
            "faults": {k: v for k, v in self.config.faults.to_dict().items() if v},
            "max_frame_bytes": self.config.max_frame_bytes,
            "replay_buffer": self.config.replay_buffer,
            "send_queue_limit": self.config.send_queue_limit,
        }

    # --- WebSocket side ---------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        admission = self._admissions.pop(ws)
        principal = admission.principal
        if admission.endpoint == MONITOR_ENDPOINT:
            sub = self.manager.connect_monitor(principal.user_id, ws)
        else:
            sub = self.manager.connect_user(principal.user_id, ws)
        if admission.after_seq is not None:
            self.manager.resume(sub, admission.after_seq)
        try:
            async for raw in ws:
                self._on_frame(sub, raw)
        except ConnectionClosed:
            pass  # the client went away; its runs go on and their events wait for resume
        finally:
            await self.manager.disconnect(sub)

    def _on_frame(self, sub: Subscriber, raw: str | bytes) -> None:
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
            self.manager.resume(sub, message.after_seq)
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


def _response(status: HTTPStatus, body: bytes, content_type: str = "text/plain") -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)


async def run_server(config: RuntimeConfig) -> None:
    """Serve until cancelled (Ctrl-C), then shut down gracefully."""
    server = RuntimeServer(config)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
