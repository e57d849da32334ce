"""``DeliveryTicket``: one event's sends, counted until its ``delivery`` report can be made.

Each connection an event is queued to settles the ticket once: written to the socket, or
failed (the connection closed, overflowed, or was stopped). When the last one has settled,
the sink (``WebSocketManager``) reports the event's delivery on the observer stream.
"""

from __future__ import annotations

from typing import Protocol


class Deliverable(Protocol):
    """What a delivery report says of its event (an ``Event``, or what a cluster node
    read off its user's channel)."""

    @property
    def event_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def timestamp(self) -> float: ...


class DeliveryTicket:
    """Tracks one event's sends so its ``delivery`` report can be made when they finish.

    ``recipients`` are the users of the connections that settled the ticket (each says
    whose it is): the report names who was sent the event, not who it was meant for, so a
    routing bug that hands it to another user's connection shows on the observer stream.
    """

    __slots__ = ("_recipients", "event", "failed", "ok", "pending")

    def __init__(self, event: Deliverable, pending: int) -> None:
        self.event = event
        self.pending = pending
        self.ok = 0
        self.failed = 0
        # nearly always one user: a set is made only when a second one turns up
        self._recipients: str | set[str] | None = None

    def add_recipient(self, user_id: str) -> None:
        known = self._recipients
        if known is None:
            self._recipients = user_id
        elif isinstance(known, str):
            if known != user_id:
                self._recipients = {known, user_id}
        else:
            known.add(user_id)

    @property
    def recipients(self) -> tuple[str, ...]:
        """The users sent the event, sorted."""
        known = self._recipients
        if known is None:
            return ()
        return (known,) if isinstance(known, str) else tuple(sorted(known))


class DeliverySink(Protocol):
    """Where a connection settles the tickets of the frames it was given."""

    def send_done(self, ticket: DeliveryTicket, recipient: str) -> None: ...

    def send_failed(
        self, ticket: DeliveryTicket | None, reason: str, recipient: str = ""
    ) -> None: ...
