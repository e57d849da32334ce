"""``Workspace``: what the monitor is watching — a runtime it embeds, or a remote one.

``Workspace.embedded()`` needs no setup: it starts a runtime on a free local port with a
fresh secret, the ingest, and (by default) demo traffic, so a new user sees live activity
within a second or two. ``Workspace.remote(url, token)`` only ingests.

``record_to=<directory>`` records every frame of the session to a new recording there
(``monitor.model.recording``); the app passes ``recordings_dir()``. It is opt-in here so
that tests and scripts never write to the user's data directory unless asked.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal, Self

from runtime.auth import Role
from runtime.config import RuntimeConfig
from runtime.embedded import EmbeddedRuntime

from .demo import DemoTraffic
from .ingest import MonitorIngest, TokenSource
from .recording.recorder import Recorder
from .session import FROM_START_VALIDATOR, ObservationSession

#: the observer id in the embedded runtime's monitor tokens
MONITOR_ID = "agent-monitor"
#: slows the demo agents to half speed: lively, but each step stays readable on screen
DEMO_PACE = 0.5


def embedded_config() -> RuntimeConfig:
    """The embedded runtime's defaults: loopback, a free port, a secret of its own."""
    return RuntimeConfig(
        host="127.0.0.1",
        port=0,
        secret=secrets.token_hex(32),
        allow_client_faults=True,  # the demo asks for faults; nothing else can reach it
        pace=DEMO_PACE,
    )


class Workspace:
    """A session plus what feeds it; ``stop()`` (or leaving ``with``) shuts it all down."""

    def __init__(
        self,
        session: ObservationSession,
        target: str,
        kind: Literal["embedded", "remote"],
        ingest: MonitorIngest,
        *,
        runtime: EmbeddedRuntime | None = None,
        secret: str | None = None,
        demo: DemoTraffic | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.session = session
        self.target = target  # shown in the title bar and status line
        self.kind = kind
        self.ingest = ingest
        self.runtime = runtime
        #: the embedded runtime's secret (the pre-deploy check mints its tokens with it)
        self.secret = secret
        self.demo = demo
        #: writes every received frame to this session's recording (None: not recording)
        self.recorder = recorder

    @classmethod
    def embedded(
        cls,
        demo: bool = True,
        config: RuntimeConfig | None = None,
        *,
        record_to: Path | None = None,
        max_recording_bytes: int | None = None,
    ) -> Workspace:
        """Start a runtime in this process, watch it, and (``demo``) put traffic on it.

        ``config`` replaces ``embedded_config()`` entirely (use its ``with_overrides``).
        ``record_to``: record the session in a new file in that directory, of at most
        ``max_recording_bytes``.
        """
        runtime = EmbeddedRuntime(config or embedded_config()).start()
        # Watched from its first frame, so every user's stream must start at seq 1.
        session = ObservationSession(validator_config=FROM_START_VALIDATOR)
        recorder = _recorder(
            session,
            target=runtime.url,
            kind="embedded",
            late_join=False,
            directory=record_to,
            max_bytes=max_recording_bytes,
        )
        ingest: MonitorIngest | None = None
        traffic: DemoTraffic | None = None

        def monitor_token() -> str:
            # Minted per connection: a reconnect after the token's lifetime still works.
            return runtime.issue_token(MONITOR_ID, Role.MONITOR)

        try:
            # from_start: we own this runtime, so whatever it emitted before the ingest
            # connected belongs in the session too.
            ingest = MonitorIngest(session, runtime.url, monitor_token, from_start=True).start()
            if demo:
                traffic = DemoTraffic(runtime.url, runtime.issue_token).start()
        except BaseException:
            for part in (traffic, ingest, runtime, recorder):
                if part is not None:
                    part.stop()
            raise
        return cls(
            session,
            runtime.url,
            "embedded",
            ingest,
            runtime=runtime,
            secret=runtime.config.secret,
            demo=traffic,
            recorder=recorder,
        )

    @classmethod
    def remote(
        cls,
        url: str,
        token: TokenSource,
        *,
        record_to: Path | None = None,
        max_recording_bytes: int | None = None,
    ) -> Workspace:
        """Watch the runtime at ``url`` (``ws://`` or ``wss://``) with a monitor token;
        ``record_to`` as for ``embedded``."""
        session = ObservationSession()
        recorder = _recorder(
            session,
            target=url,
            kind="remote",
            late_join=True,
            directory=record_to,
            max_bytes=max_recording_bytes,
        )
        try:
            ingest = MonitorIngest(session, url, token).start()
        except BaseException:
            if recorder is not None:
                recorder.stop()
            raise
        return cls(session, url, "remote", ingest, recorder=recorder)

    def stop(self) -> None:
        """Stop the demo, then the ingest, then the runtime (each waits for its thread),
        then close the recording once every frame received is in it."""
        if self.demo is not None:
            self.demo.stop()
        self.ingest.stop()
        if self.runtime is not None:
            self.runtime.stop()
        if self.recorder is not None:
            self.recorder.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _recorder(
    session: ObservationSession,
    *,
    target: str,
    kind: str,
    late_join: bool,
    directory: Path | None,
    max_bytes: int | None,
) -> Recorder | None:
    """A started recorder attached to ``session`` (before any frame arrives), or None.

    A recording that can't be created leaves the recorder FAILED — loud in its status —
    and the session working: watching never depends on the disk.
    """
    if directory is None:
        return None
    recorder = Recorder.create(
        target, kind, late_join=late_join, directory=directory, max_bytes=max_bytes
    )
    return recorder.start().attach(session)
