"""``UserExecutionContext``: the identity every agent run executes under.

Routing of every event is by this context's ``user_id``; nothing is ever broadcast. The
context is frozen and validates its ids so a malformed or injected id cannot reach routing,
logs or metrics labels.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


class InvalidContextError(ValueError):
    """An id that may not be used to route events."""


def validate_id(kind: str, value: object) -> str:
    """Return ``value`` if it is a usable id (1-128 chars of ``[A-Za-z0-9_.:@-]``)."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidContextError(
            f"{kind} must be 1-128 characters of letters, digits and _.:@- (got {value!r})"
        )
    return value


def new_id(prefix: str) -> str:
    """A fresh, unguessable id such as ``run_3f0c…``."""
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class UserExecutionContext:
    """Who a run belongs to and how to correlate everything it causes.

    ``request_id`` is the correlation id: it appears in every event's ``data`` of the run
    (as ``correlation_id``) and in every log line about it.
    """

    user_id: str
    thread_id: str
    run_id: str
    request_id: str = field(default_factory=lambda: new_id("req"))
    agent_name: str = "supervisor"
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        validate_id("user_id", self.user_id)
        validate_id("thread_id", self.thread_id)
        validate_id("run_id", self.run_id)
        validate_id("request_id", self.request_id)
        validate_id("agent_name", self.agent_name)

    @classmethod
    def for_message(
        cls, user_id: str, agent_name: str, thread_id: str | None = None
    ) -> UserExecutionContext:
        """A context for a new run started by a user message."""
        return cls(
            user_id=user_id,
            thread_id=thread_id or new_id("th"),
            run_id=new_id("run"),
            agent_name=agent_name,
        )

    def child(self, agent_name: str) -> UserExecutionContext:
        """The same run seen from a sub-agent the run delegates to."""
        return UserExecutionContext(
            user_id=self.user_id,
            thread_id=self.thread_id,
            run_id=self.run_id,
            request_id=self.request_id,
            agent_name=agent_name,
            created_at=self.created_at,
        )
