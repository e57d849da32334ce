"""``CheckTarget``: the runtime a pre-deploy check runs the suite against, and its credentials.

The monitor's workspace says what it watches (an embedded runtime with its secret, or a
remote URL with a monitor token); the check turns that into a ``CheckTarget``. Credentials
never appear in ``repr`` (they would end up in logs) and never on a command line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import urlsplit

import jwt

from ..workspace_kind import WorkspaceKind

TargetKind = Literal["embedded", "remote"]


class InvalidTarget(ValueError):
    """The target URL or a token cannot be used."""


def http_base(url: str) -> str:
    """``ws://host:port[/]`` -> ``http://host:port`` (``wss`` -> ``https``)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise InvalidTarget(f"the target must look like ws://host:port, got {url!r}")
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


def token_role(token: str) -> str:
    """The ``role`` claim of a token (``user`` when absent), read without verifying it:
    only the target can verify; this just sorts tokens into user and monitor ones."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidTarget(f"not a token (JWT): {exc}") from None
    return str(claims.get("role", "user"))


def split_tokens(tokens: Iterable[str]) -> tuple[tuple[str, ...], str | None]:
    """Sort tokens by their role claim: ``(user tokens, the monitor token or None)``."""
    users: list[str] = []
    monitor: str | None = None
    for given in tokens:
        token = given.strip()
        if not token:
            continue
        if token_role(token) == "monitor":
            monitor = token
        else:
            users.append(token)
    return tuple(users), monitor


@dataclass(frozen=True, slots=True)
class CheckTarget:
    """A runtime to check: its URL, whether the monitor embeds it, and what we may use."""

    url: str
    kind: TargetKind = "remote"
    secret: str | None = field(default=None, repr=False)
    user_tokens: tuple[str, ...] = field(default=(), repr=False)
    monitor_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.strip().rstrip("/"))
        http_base(self.url)  # raises InvalidTarget for anything but ws(s)://host

    @property
    def http_url(self) -> str:
        """The target's HTTP base (``/healthz``, ``/metrics``)."""
        return http_base(self.url)

    @property
    def can_mint(self) -> bool:
        """Whether the suite can mint fresh users (it has the secret)."""
        return bool(self.secret)

    def describe(self) -> str:
        """``embedded runtime ws://… `` / ``ws://…`` — for titles, reports and history."""
        return f"embedded runtime {self.url}" if self.kind == "embedded" else self.url

    def credentials(self) -> str:
        """What the suite gets, in words (never the values)."""
        if self.secret:
            return "secret (the suite mints its own users)"
        parts = []
        if self.user_tokens:
            n = len(self.user_tokens)
            parts.append(f"{n} user token{'s' if n != 1 else ''}")
        if self.monitor_token:
            parts.append("a monitor token")
        if not parts:
            return "none (tests that need a user will skip)"
        return " + ".join(parts) + " (no secret: tests that mint users will skip)"


class WorkspaceView(Protocol):
    """What ``target_of`` reads from a workspace (the part of ``WatchedWorkspace`` it
    needs)."""

    @property
    def target(self) -> str: ...

    @property
    def kind(self) -> WorkspaceKind: ...

    @property
    def secret(self) -> str | None: ...


def target_of(
    workspace: WorkspaceView,
    *,
    secret: str | None = None,
    tokens: Iterable[str] = (),
    monitor_token: str | None = None,
) -> CheckTarget:
    """The check target for what ``workspace`` watches.

    An embedded workspace carries its runtime's secret (``Workspace.secret``); for a remote
    one pass what the user gave: a ``secret``, ``tokens`` (sorted by their role claim) and
    the ``monitor_token`` the window connected with (taken as it is: the target judges it).
    """
    users, monitor = split_tokens(tokens)
    monitor = monitor_token or monitor
    kind: TargetKind = "embedded" if workspace.kind == WorkspaceKind.EMBEDDED else "remote"
    return CheckTarget(
        workspace.target,
        kind,
        secret=secret or workspace.secret,
        user_tokens=users,
        monitor_token=monitor,
    )
