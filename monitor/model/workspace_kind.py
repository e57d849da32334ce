"""What the monitor watches, as the window and its panels need it: a ``WatchedWorkspace``
of one ``WorkspaceKind`` — a runtime this app embeds, a remote runtime, or a recording
played back.

The implementations are ``monitor.services.workspace.Workspace`` (embedded and remote) and
``monitor.services.recording.ReplayWorkspace`` (replay); code that needs what only one of
them has (the ingest, the recorder, the replay) narrows with ``isinstance``, and everything
else asks ``kind`` instead of looking for attributes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from .session import ObservationSession


class WorkspaceKind(StrEnum):
    """What a workspace watches (also its word in the status bar)."""

    #: a runtime this app started on a free local port, with demo traffic
    EMBEDDED = "embedded"
    #: a runtime elsewhere (staging, production), watched with a monitor token
    REMOTE = "remote"
    #: a recording played back: no runtime behind it
    REPLAY = "replay"


#: the kinds with a runtime to talk to (chat, pre-deploy check)
LIVE_KINDS = frozenset({WorkspaceKind.EMBEDDED, WorkspaceKind.REMOTE})


class RuntimeHandle(Protocol):
    """The embedded runtime, as the window uses it: where it listens, and tokens for any
    user (``runtime.embedded.EmbeddedRuntime``)."""

    @property
    def url(self) -> str: ...

    def issue_token(self, user_id: str, /) -> str: ...


class WatchedWorkspace(Protocol):
    """What the window, the chat and the pre-deploy check need of a workspace."""

    @property
    def kind(self) -> WorkspaceKind: ...

    @property
    def target(self) -> str:
        """What is watched, for the title bar and the status line (a URL, a file)."""
        ...

    @property
    def session(self) -> ObservationSession:
        """The session the views show (a replay's is replaced on a backward seek)."""
        ...

    @property
    def runtime(self) -> RuntimeHandle | None:
        """The runtime this app embeds (``EMBEDDED`` only)."""
        ...

    @property
    def secret(self) -> str | None:
        """The embedded runtime's signing secret (the pre-deploy check mints tokens with
        it); None for the other kinds."""
        ...

    def stop(self) -> None:
        """Shut down whatever feeds the session (and the runtime, if embedded)."""
        ...
