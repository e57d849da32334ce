"""Runtime configuration: a dataclass with defaults, overridable by environment and CLI."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .faults import FaultConfig

ENV_PREFIX = "AGENT_RUNTIME_"
#: the allowed browser origins, comma-separated (the CLI's ``--allowed-origin``)
ALLOWED_ORIGINS_ENV = ENV_PREFIX + "ALLOWED_ORIGINS"
#: Used only when no secret is configured; ``serve`` warns loudly when it is in effect.
DEV_SECRET = "dev-insecure-secret-change-me-before-deploying"
#: fault parameters that are no fault by themselves, each with the fault it tunes (None:
#: all of them). ``chaos_delay_ms`` has a non-zero default, so listing every non-zero field
#: reported a delay fault on a runtime with no fault on.
FAULT_PARAMETERS: dict[str, str | None] = {"chaos_delay_ms": "chaos_delay", "seed": None}


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Everything the server and the engine need. Times in seconds, sizes in bytes/frames."""

    host: str = "127.0.0.1"
    port: int = 8765
    secret: str = DEV_SECRET
    #: largest inbound frame; bigger frames close the connection with 1009.
    max_frame_bytes: int = 64 * 1024
    #: frames waiting to be written to one connection before it counts as a slow consumer.
    send_queue_limit: int = 5000
    #: events per user kept for ``resume``.
    replay_buffer: int = 2000
    #: frames kept for ``resume`` on the observer stream.
    monitor_replay_buffer: int = 100_000
    max_runs_per_user: int = 8
    tool_timeout: float = 5.0
    run_timeout: float = 120.0
    #: multiplies every pause agents take between steps; 0 runs as fast as possible.
    pace: float = 1.0
    #: browser origins allowed to open a WebSocket, compared as ``runtime.origins`` says;
    #: empty allows any
    allowed_origins: tuple[str, ...] = ()
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 2.0
    #: honour ``options.faults`` in user messages (tests and demos; never in production).
    allow_client_faults: bool = False
    faults: FaultConfig = field(default_factory=FaultConfig)
    #: the Redis every node of a cluster shares (``redis://HOST:PORT/DB``); None: this
    #: process keeps its streams in memory, alone
    broker: str | None = None
    #: the prefix of every key and channel in the broker: clusters sharing one Redis each
    #: need their own
    broker_namespace: str = "aem"
    #: this process's name in observer frames and ``/healthz`` (None: host name and pid)
    node_id: str | None = None

    def active_faults(self) -> dict[str, Any]:
        """The faults that are on, each with the parameters that tune it; ``{}`` if none."""
        values = self.faults.to_dict()
        active = {k: v for k, v in values.items() if k not in FAULT_PARAMETERS and v}
        for parameter, fault in FAULT_PARAMETERS.items():
            tunes_an_active_fault = fault in active if fault is not None else bool(active)
            if tunes_an_active_fault and values[parameter] is not None:
                active[parameter] = values[parameter]
        return active

    @property
    def uses_dev_secret(self) -> bool:
        return self.secret == DEV_SECRET

    def with_overrides(self, **overrides: Any) -> RuntimeConfig:
        """A copy with the given fields replaced; ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeConfig:
        """Defaults overridden by ``AGENT_RUNTIME_<FIELD>`` variables (e.g. ``..._SECRET``)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw)
        return cls(**values)


def _parse(name: str, raw: str) -> Any:
    if name == "faults":
        return FaultConfig.parse(raw)
    if name == "allowed_origins":
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    if name == "allow_client_faults":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if name in {"host", "secret", "broker", "broker_namespace", "node_id"}:
        return raw
    if name in {
        "port",
        "max_frame_bytes",
        "send_queue_limit",
        "replay_buffer",
        "monitor_replay_buffer",
        "max_runs_per_user",
    }:
        return int(raw)
    if name in {"ping_interval", "ping_timeout"} and raw.strip().lower() in {"", "none", "off"}:
        return None
    return float(raw)
