"""Which browser origins may open a WebSocket: the ``--allowed-origin`` rule.

websockets compares Origin headers as exact strings, so ``https://App.example`` or
``https://app.example:443`` were refused although a browser means the same origin by them.
Both the configured origins and the received one are normalised before they are compared
(``normalize_origin``). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

#: what a page without an origin of its own sends (``file://`` pages, sandboxed iframes)
NULL_ORIGIN = "null"
#: the port a scheme implies, left out of the normalised form
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
#: how the rule is explained to operators (the CLI's help, the 403's body)
ORIGIN_RULE = (
    "scheme and host match case-insensitively, the default port (80 for http/ws, 443 for "
    "https/wss) and a trailing slash are ignored, and 'null' (file:// pages, sandboxed "
    "iframes) matches only if 'null' itself is allowed"
)


def normalize_origin(origin: str) -> str:
    """The form in which two spellings of one origin are equal: lower-case scheme and host,
    no default port, no trailing slash; ``null`` stays ``null``.

    Raises ``ValueError`` for anything that is not ``scheme://host[:port]`` or ``null``.
    """
    value = origin.strip()
    if value.lower() == NULL_ORIGIN:
        return NULL_ORIGIN
    parts = urlsplit(value)
    if (
        not parts.scheme
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"{origin!r} is not an origin: expected scheme://host[:port] or null")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{origin!r} is not an origin: its port is not a number") from None
    # urlsplit lower-cases the scheme and the host and drops an IPv6 host's brackets.
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class OriginPolicy:
    """The origins allowed to open a WebSocket; none configured allows every origin.

    A request without an Origin header is always allowed: browsers always send one on a
    WebSocket handshake, so its absence means a non-browser client, which an Origin check
    cannot restrict anyway.
    """

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        # Configured origins that are not origins raise here, at startup, rather than
        # silently never matching.
        self.allowed = frozenset(normalize_origin(origin) for origin in allowed)

    def allows(self, origin: str | None) -> bool:
        if not self.allowed or origin is None:
            return True
        try:
            return normalize_origin(origin) in self.allowed
        except ValueError:
            return False
