"""Signed tokens (JWT, HS256) for the ``/ws`` and ``/monitor`` endpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

from .context import InvalidContextError, validate_id

ALGORITHM = "HS256"
ISSUER = "agent-runtime"


class Role(StrEnum):
    USER = "user"
    MONITOR = "monitor"


class AuthError(Exception):
    """A token that does not grant access; the message is safe to show the client."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a connection belongs to."""

    user_id: str
    role: Role


class TokenAuthority:
    """Issues and verifies tokens for one shared secret."""

    def __init__(self, secret: str, default_ttl: float = 24 * 3600) -> None:
        if not secret:
            raise ValueError("the token secret must not be empty")
        self._secret = secret
        self.default_ttl = default_ttl

    def issue(self, user_id: str, role: Role | str = Role.USER, ttl: float | None = None) -> str:
        """A token whose ``sub`` is ``user_id``."""
        validate_id("user_id", user_id)
        now = int(time.time())
        claims = {
            "sub": user_id,
            "role": Role(role).value,
            "iat": now,
            "exp": now + int(self.default_ttl if ttl is None else ttl),
            "iss": ISSUER,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal a token names, or ``AuthError`` saying why it is refused."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is invalid") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        try:
            user_id = validate_id("sub", claims["sub"])
            role = Role(claims.get("role", Role.USER.value))
        except (InvalidContextError, ValueError) as exc:
            raise AuthError(f"invalid token claims: {exc}") from None
        return Principal(user_id=user_id, role=role)
