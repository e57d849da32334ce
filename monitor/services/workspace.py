"""``Workspace``: what the monitor is watching — a runtime it embeds, or a remote one.

``Workspace.embedded()`` needs no setup: it starts a runtime on a free local port with a
fresh secret, the ingest, and (by default) demo traffic, so a new user sees live activity
within a second or two. ``Workspace.remote(url, token)`` only ingests.

Every session is recorded by its capture process (``ingest``); ``record_to=<directory>``
keeps that recording there (the app passes ``recordings_dir()`` and the user's retention
policy), otherwise it is a temporary file deleted with the session. Keeping is opt-in here
so that tests and scripts never write to the user's data directory unless asked.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Self

from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from monitor.model.workspace_kind import WorkspaceKind
from runtime.auth import Role
from runtime.config import RuntimeConfig
from runtime.embedded import EmbeddedRuntime

from .capture import TokenMint, TokenSource
from .demo import DemoTraffic
from .ingest import LiveRecording, MonitorIngest, RecordingPlan
from .recording.storage import MB, RetentionPolicy
from .run_archive import archived_store

#: the observer id in the embedded runtime's monitor tokens
MONITOR_ID = "agent-monitor"
#: slows the demo agents to half speed: lively, but each step stays readable on screen
DEMO_PACE = 0.5
#: observer-stream frames the embedded runtime keeps for resume: minutes of demo traffic
EMBEDDED_MONITOR_REPLAY = 20_000


def embedded_config() -> RuntimeConfig:
    """The embedded runtime's defaults: loopback, a free port, a secret of its own."""
    return RuntimeConfig(
        host="127.0.0.1",
        port=0,
        secret=secrets.token_hex(32),
        allow_client_faults=True,  # the demo asks for faults; nothing else can reach it
        pace=DEMO_PACE,
        # Its only observer is this monitor, resuming within a second or two after a
        # hiccup: the server default (100,000 frames, for observers far away) held tens of
        # MB more for a monitor left open all day.
        monitor_replay_buffer=EMBEDDED_MONITOR_REPLAY,
    )


class Workspace:
    """A session plus what feeds it; ``stop()`` (or leaving ``with``) shuts it all down."""

    def __init__(
        self,
        session: ObservationSession,
        target: str,
        kind: WorkspaceKind,
        ingest: MonitorIngest,
        *,
        runtime: EmbeddedRuntime | None = None,
        secret: str | None = None,
        demo: DemoTraffic | None = None,
    ) -> None:
        self.session = session
        self.target = target  # shown in the title bar and status line
        self.kind: WorkspaceKind = kind
        self.ingest = ingest
        self.runtime = runtime
        #: the embedded runtime's secret (the pre-deploy check mints its tokens with it)
        self.secret = secret
        self.demo = demo

    def frames_behind(self) -> int:
        """Frames received (and recorded) but not yet fed to the session: the window's
        lag behind the stream."""
        return self.ingest.stats().behind

    @property
    def recorder(self) -> LiveRecording | None:
        """The recording kept of this session (None: a temporary one, not kept)."""
        return self.ingest.recording

    @classmethod
    def embedded(
        cls,
        demo: bool = True,
        config: RuntimeConfig | None = None,
        *,
        record_to: Path | None = None,
        retention: RetentionPolicy | None = None,
        max_recording_bytes: int | None = None,
    ) -> Workspace:
        """Start a runtime in this process, watch it, and (``demo``) put traffic on it.

        ``config`` replaces ``embedded_config()`` entirely (use its ``with_overrides``).
        ``record_to``: keep the session's recording in that directory, within ``retention``.
        """
        runtime = EmbeddedRuntime(config or embedded_config()).start()
        # Watched from its first frame, so every user's stream must start at seq 1.
        session = ObservationSession(archived_store(), validator_config=FROM_START_VALIDATOR)
        ingest: MonitorIngest | None = None
        traffic: DemoTraffic | None = None
        try:
            # from_start: we own this runtime, so whatever it emitted before the ingest
            # connected belongs in the session too. Tokens are minted per connection: a
            # reconnect after a token's lifetime still works.
            ingest = MonitorIngest(
                session,
                runtime.url,
                TokenMint(runtime.config.secret, MONITOR_ID, Role.MONITOR.value),
                from_start=True,
                recording=_plan(record_to, retention, max_recording_bytes),
                kind=WorkspaceKind.EMBEDDED,
            ).start()
            if demo:
                traffic = DemoTraffic(runtime.url, runtime.issue_token).start()
        except BaseException:
            for part in (traffic, ingest, runtime):
                if part is not None:
                    part.stop()
            raise
        return cls(
            session,
            runtime.url,
            WorkspaceKind.EMBEDDED,
            ingest,
            runtime=runtime,
            secret=runtime.config.secret,
            demo=traffic,
        )

    @classmethod
    def remote(
        cls,
        url: str,
        token: TokenSource,
        *,
        record_to: Path | None = None,
        retention: RetentionPolicy | None = None,
        max_recording_bytes: int | None = None,
    ) -> Workspace:
        """Watch the runtime at ``url`` (``ws://`` or ``wss://``) with a monitor token;
        ``record_to`` and ``retention`` as for ``embedded``."""
        session = ObservationSession(archived_store())
        ingest = MonitorIngest(
            session,
            url,
            token,
            recording=_plan(record_to, retention, max_recording_bytes),
            kind=WorkspaceKind.REMOTE,
        ).start()
        return cls(session, url, WorkspaceKind.REMOTE, ingest)

    def stop(self) -> None:
        """Stop the demo, then the ingest (its capture closes the recording), then the
        runtime (each waits for its thread)."""
        if self.demo is not None:
            self.demo.stop()
        self.ingest.stop()
        if self.runtime is not None:
            self.runtime.stop()
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _plan(
    directory: Path | None, retention: RetentionPolicy | None, max_bytes: int | None
) -> RecordingPlan | None:
    if directory is None:
        return None
    if retention is None and max_bytes is not None:
        retention = RetentionPolicy(max_total_mb=max_bytes / MB, max_age_days=0)
    return RecordingPlan(directory, retention)
