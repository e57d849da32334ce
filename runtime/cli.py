"""``agent-runtime``: serve the runtime, print tokens, generate load."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .auth import Role, TokenAuthority
from .cluster import check_cluster_options
from .config import ALLOWED_ORIGINS_ENV, ENV_PREFIX, RuntimeConfig
from .faults import FaultConfig
from .log_format import LOG_FORMAT_ENV, LOG_FORMATS, configure_logging
from .manager import StreamsUnavailableError
from .origins import ORIGIN_RULE, OriginPolicy

log = logging.getLogger("runtime")

_CHAOS_KEYS = {
    "drop": "chaos_drop",
    "duplicate": "chaos_duplicate",
    "reorder": "chaos_reorder",
    "delay": "chaos_delay",
    "omit_terminal": "chaos_omit_terminal",
}


def parse_chaos(spec: str) -> dict[str, float]:
    """``"drop=0.01,duplicate=0.02"`` -> fault fields (the ``--chaos`` flag)."""
    values: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, raw = item.partition("=")
        if not sep or name.strip() not in _CHAOS_KEYS:
            raise argparse.ArgumentTypeError(
                f"--chaos takes name=probability with names {', '.join(_CHAOS_KEYS)}; got {item!r}"
            )
        values[_CHAOS_KEYS[name.strip()]] = float(raw)
    return values


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-runtime",
        description="Agent runtime that streams agent progress events over WebSockets.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the WebSocket server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8765; 0 picks a free one)")
    serve.add_argument("--secret", help=f"token secret (or {ENV_PREFIX}SECRET)")
    serve.add_argument("--max-frame-bytes", type=int, help="largest inbound frame")
    serve.add_argument("--send-queue-limit", type=int, help="frames queued per connection")
    serve.add_argument("--replay-buffer", type=int, help="events kept per user for resume")
    serve.add_argument("--max-runs-per-user", type=int)
    serve.add_argument("--tool-timeout", type=float, help="seconds before a tool times out")
    serve.add_argument("--run-timeout", type=float, help="seconds before a run times out")
    serve.add_argument("--pace", type=float, help="agent pacing factor; 0 = no pauses")
    serve.add_argument(
        "--allowed-origin",
        action="append",
        dest="allowed_origins",
        metavar="ORIGIN",
        help=f"a browser origin allowed to open a WebSocket, e.g. https://app.example "
        f"(repeatable; or {ALLOWED_ORIGINS_ENV}, comma-separated); default: any. "
        f"Matching: {ORIGIN_RULE}. Requests without an Origin header (non-browser clients) "
        "are always allowed",
    )
    serve.add_argument(
        "--allow-client-faults",
        action="store_true",
        default=None,
        help="honour options.faults in user messages (tests and demos only)",
    )
    serve.add_argument("--tool-failure-rate", type=float)
    serve.add_argument("--tool-latency-ms", type=float)
    serve.add_argument("--tool-hang-rate", type=float)
    serve.add_argument("--agent-crash-rate", type=float)
    serve.add_argument(
        "--chaos",
        type=parse_chaos,
        default={},
        help="protocol chaos, e.g. drop=0.01,duplicate=0.01,reorder=0.01,"
        "delay=0.01,omit_terminal=0.05",
    )
    serve.add_argument("--chaos-delay-ms", type=float)
    serve.add_argument("--fault-seed", type=int, help="make fault decisions reproducible")
    serve.add_argument(
        "--broker",
        metavar="URL",
        help="the Redis every node of a cluster shares, redis://HOST:PORT/DB (rediss:// for "
        f"TLS; or {ENV_PREFIX}BROKER). Every process started with the same broker and "
        "namespace is a node of one runtime; without it, streams stay in this process",
    )
    serve.add_argument(
        "--broker-namespace",
        metavar="NAME",
        help="prefix of the cluster's keys and channels in Redis (default aem): one per "
        "cluster sharing a Redis",
    )
    serve.add_argument(
        "--node-id",
        metavar="ID",
        help="this node's name in observer frames and /healthz (default: host name and pid)",
    )
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help=f"text for people (default), json for log shippers: one JSON object per line "
        f"with the user, thread, run, tool call and connection ids (or {LOG_FORMAT_ENV})",
    )

    token = sub.add_parser("token", help="print a signed token for a user")
    token.add_argument("--user", required=True)
    token.add_argument("--role", choices=[r.value for r in Role], default=Role.USER.value)
    token.add_argument("--secret", help=f"token secret (or {ENV_PREFIX}SECRET)")
    token.add_argument("--ttl", type=float, default=24 * 3600, help="lifetime in seconds")

    load = sub.add_parser("load", help="generate load against a runtime and report loss")
    load.add_argument("--url", required=True, help="ws://host:port of the runtime")
    load.add_argument("--users", type=int, default=10)
    load.add_argument("--rate", type=float, default=1000.0, help="target events/s in total")
    load.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    load.add_argument("--connections-per-user", type=int, default=1)
    load.add_argument(
        "--run-seconds",
        type=float,
        default=1.0,
        help="how long each run lasts at the target rate (shorter: more, smaller runs)",
    )
    load.add_argument("--secret", help=f"token secret (or {ENV_PREFIX}SECRET)")
    load.add_argument("--json", dest="json_path", help="also write the report as JSON here")
    return parser


def _serve_config(args: argparse.Namespace) -> RuntimeConfig:
    base = RuntimeConfig.from_env()
    fault_overrides = {
        name: value
        for name, value in (
            ("tool_failure_rate", args.tool_failure_rate),
            ("tool_latency_ms", args.tool_latency_ms),
            ("tool_hang_rate", args.tool_hang_rate),
            ("agent_crash_rate", args.agent_crash_rate),
            ("chaos_delay_ms", args.chaos_delay_ms),
            ("seed", args.fault_seed),
            *args.chaos.items(),
        )
        if value is not None
    }
    faults: FaultConfig = base.faults.merged(fault_overrides)
    return base.with_overrides(
        host=args.host,
        port=args.port,
        secret=args.secret,
        max_frame_bytes=args.max_frame_bytes,
        send_queue_limit=args.send_queue_limit,
        replay_buffer=args.replay_buffer,
        max_runs_per_user=args.max_runs_per_user,
        tool_timeout=args.tool_timeout,
        run_timeout=args.run_timeout,
        pace=args.pace,
        allowed_origins=tuple(args.allowed_origins) if args.allowed_origins else None,
        allow_client_faults=args.allow_client_faults,
        faults=faults,
        broker=args.broker,
        broker_namespace=args.broker_namespace,
        node_id=args.node_id,
    )


def _secret(args: argparse.Namespace) -> str:
    return args.secret or RuntimeConfig.from_env().secret


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "token":
        try:
            token = TokenAuthority(_secret(args)).issue(args.user, args.role, ttl=args.ttl)
        except ValueError as exc:  # e.g. an invalid --user: a usage error, not a traceback
            parser.error(str(exc))
        print(token)
        return 0
    if args.command == "serve":
        log_format = args.log_format or os.environ.get(LOG_FORMAT_ENV) or "text"
        try:
            configure_logging(args.log_level, log_format)
        except ValueError as exc:
            parser.error(str(exc))
        try:
            config = _serve_config(args)
        except ValueError as exc:
            parser.error(str(exc))
        if not config.secret:  # --secret "": refuse here, not with a traceback at startup
            parser.error("the token secret must not be empty")
        try:
            OriginPolicy(config.allowed_origins)
        except ValueError as exc:
            parser.error(f"--allowed-origin / {ALLOWED_ORIGINS_ENV}: {exc}")
        try:
            check_cluster_options(config)
        except ValueError as exc:
            parser.error(str(exc))
        if config.uses_dev_secret:
            log.warning(
                "no secret configured: using the insecure development secret. Set "
                "%sSECRET or --secret before exposing this server.",
                ENV_PREFIX,
            )
        if config.faults.any_enabled:
            log.warning("fault injection enabled: %s", config.active_faults())
        from .service import run_server

        try:
            asyncio.run(run_server(config))
        except KeyboardInterrupt:
            pass  # Ctrl-C before the signal handlers were in place: nothing ran yet
        except StreamsUnavailableError as exc:
            print(f"agent-runtime: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(
                f"agent-runtime: cannot listen on {config.host}:{config.port}: {exc}",
                file=sys.stderr,
            )
            return 2
        return 0
    if args.command == "load":
        from .load_generator import LoadSpec, run_load

        spec = LoadSpec(
            url=args.url,
            users=args.users,
            rate=args.rate,
            duration=args.duration,
            connections_per_user=args.connections_per_user,
            secret=_secret(args),
            run_seconds=args.run_seconds,
        )
        report = asyncio.run(run_load(spec))
        print(report.table())
        if args.json_path:
            report.write_json(args.json_path)
        return 0 if report.ok else 1
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
