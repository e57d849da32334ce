"""The ``--broker`` URL: which Redis a cluster's nodes share, checked before anything starts.

Only ``redis://`` and ``rediss://`` (TLS) with a host are accepted: a typo, a stray space or
a URL that smuggles something else (control characters, a query redis-py would act on, a
database that is not a number) fails at start with one line saying what is wrong, instead
of a node that connects somewhere unexpected. A password is never shown again: ``display``
masks it for logs and ``/healthz``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMES = ("redis", "rediss")
DEFAULT_PORT = 6379
MAX_URL_LENGTH = 2048
#: Redis numbers its databases from 0; 16 by default, more only if configured
MAX_DB = 2**31 - 1


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used, with the reason in one line."""


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """A checked broker URL."""

    scheme: str
    host: str
    port: int
    db: int
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    @property
    def display(self) -> str:
        """The URL with its password masked: what logs and ``/healthz`` show."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = ""
        if self.username or self.password:
            user = (self.username or "") + (":***" if self.password else "") + "@"
        return f"{self.scheme}://{user}{host}:{self.port}/{self.db}"


def parse_broker_url(text: str) -> BrokerUrl:
    """Check ``text`` and return it as a ``BrokerUrl``, or raise ``BrokerUrlError``."""
    if len(text) > MAX_URL_LENGTH:
        raise BrokerUrlError(f"longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise BrokerUrlError("contains whitespace or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"not a URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        shown = parts.scheme or "none"
        raise BrokerUrlError(
            f"scheme {shown!r} is not supported: use redis://HOST:PORT/DB or rediss:// for TLS"
        )
    host = parts.hostname
    if not host:
        raise BrokerUrlError("has no host: use redis://HOST:PORT/DB")
    if parts.query or parts.fragment:
        raise BrokerUrlError("takes no query or fragment: use redis://HOST:PORT/DB")
    path = parts.path.lstrip("/")
    if path and not path.isdigit():
        raise BrokerUrlError(f"database {path!r} is not a number: use redis://HOST:PORT/DB")
    db = int(path) if path else 0
    if db > MAX_DB:
        raise BrokerUrlError(f"database {db} is out of range")
    if port == 0:
        raise BrokerUrlError("port 0 is not a port a Redis listens on")
    return BrokerUrl(
        scheme=parts.scheme,
        host=host,
        port=port or DEFAULT_PORT,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
