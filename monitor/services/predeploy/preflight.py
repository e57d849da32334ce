"""Before a check runs: is the target there, and does it accept our credentials?

Without this, an unreachable target or a wrong secret would make every test of the suite
fail one by one, and the check would read as a NO-GO about the *runtime* when the problem is
the *check*. ``probe_target`` answers in a few seconds with one clear reason instead, which
the verdict reports as ERROR. It does blocking I/O: run it off the GUI thread.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from monitor.model.predeploy.target import CheckTarget, InvalidTarget
from monitor.model.predeploy.verdict import ErrorCause
from runtime.auth import TokenAuthority
from runtime.protocol.endpoints import HEALTH_PATH, MONITOR_PATH, USER_PATH

#: seconds for each request of the probe
PROBE_TIMEOUT = 5.0


class PreflightError(Exception):
    """The target cannot be checked; the message says why, for the ERROR verdict, and
    ``cause`` which kind of refusal it is, for views that advise what to do."""

    def __init__(self, message: str, cause: ErrorCause) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a target cannot be checked: the reason in words and its kind."""

    reason: str
    cause: ErrorCause

    def __str__(self) -> str:
        return self.reason


def _unreachable(target: CheckTarget, exc: BaseException) -> PreflightError:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        why = "connection refused (nothing is listening there)"
    elif isinstance(reason, TimeoutError | socket.timeout):
        why = "no answer in time"
    elif isinstance(reason, socket.gaierror):
        why = "unknown host"
    elif isinstance(reason, ssl.SSLError):
        why = f"TLS failed: {reason}"
    else:
        why = str(reason) or type(reason).__name__
    return PreflightError(f"target unreachable: {target.url}: {why}", ErrorCause.UNREACHABLE)


def check_health(target: CheckTarget, timeout: float = PROBE_TIMEOUT) -> dict[str, object]:
    """``GET /healthz``: the health document, or ``PreflightError`` saying what is wrong."""
    url = target.http_url + HEALTH_PATH
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise PreflightError(
            f"target unhealthy: GET {url} answered HTTP {exc.code} {exc.reason}",
            ErrorCause.UNHEALTHY,
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _unreachable(target, exc) from None
    try:
        health = json.loads(body)
    except ValueError:
        raise PreflightError(
            f"{target.url} answered {HEALTH_PATH} with something other than JSON: "
            "is it an agent runtime?",
            ErrorCause.PREFLIGHT,
        ) from None
    if not isinstance(health, dict) or health.get("status") != "ok":
        status = health.get("status") if isinstance(health, dict) else health
        raise PreflightError(
            f"target unhealthy: {HEALTH_PATH} says status={status!r}", ErrorCause.UNHEALTHY
        )
    return health


def _handshake(target: CheckTarget, endpoint: str, token: str, what: str, timeout: float) -> None:
    """Open and close one WebSocket with ``token``; a refusal is a credentials error."""
    try:
        with connect(
            f"{target.url}{endpoint}",
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=timeout,
            close_timeout=timeout,
            compression=None,
        ):
            pass
    except InvalidStatus as exc:
        status = exc.response.status_code
        said = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
        if status in (401, 403):
            raise PreflightError(
                f"bad credentials: {target.url}{endpoint} refused {what} "
                f"(HTTP {status}{': ' + said if said else ''})",
                ErrorCause.BAD_CREDENTIALS,
            ) from None
        raise PreflightError(
            f"target refused the WebSocket handshake on {endpoint}: HTTP {status} {said}".strip(),
            ErrorCause.PREFLIGHT,
        ) from None
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        raise _unreachable(target, exc) from None


def check_credentials(target: CheckTarget, timeout: float = PROBE_TIMEOUT) -> None:
    """Every credential the suite will use must open a connection on the target."""
    if target.secret:
        authority = TokenAuthority(target.secret)
        user = f"check-preflight-{uuid.uuid4().hex[:8]}"
        _handshake(
            target, USER_PATH, authority.issue(user), "a token signed with the secret", timeout
        )
    for index, token in enumerate(target.user_tokens, 1):
        _handshake(target, USER_PATH, token, f"user token #{index}", timeout)
    if target.monitor_token:
        _handshake(target, MONITOR_PATH, target.monitor_token, "the monitor token", timeout)


def probe_target(target: CheckTarget, timeout: float = PROBE_TIMEOUT) -> Refusal | None:
    """None if ``target`` is up and takes the credentials, else why it cannot be checked."""
    try:
        check_health(target, timeout)
        check_credentials(target, timeout)
    except PreflightError as exc:
        return Refusal(str(exc), exc.cause)
    except InvalidTarget as exc:
        return Refusal(str(exc), ErrorCause.PREFLIGHT)
    return None
