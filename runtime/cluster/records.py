"""What a node sends the batch script and what it reads back from the channels, as plain
values (no I/O): see ``runtime.cluster.scripts`` for the script's side.

An event's frame is numbered in Redis, so a node sends it in two halves around its
``event_id`` and ``seq``; the script joins them with the numbers it takes, which makes the
frame byte for byte what the in-memory engine sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from runtime.faults import ChaosAction

from .scripts import FIELD_SEPARATOR

#: how a receiving node treats a frame: the chaos action of the run that emitted it
ACTION_CODES: dict[ChaosAction, str] = {
    ChaosAction.DELIVER: "d",
    ChaosAction.DUPLICATE: "u",
    ChaosAction.REORDER: "r",
    ChaosAction.DELAY: "l",
    ChaosAction.DROP: "x",
}
ACTIONS_BY_CODE = {code: action for action, code in ACTION_CODES.items()}

#: an event id and seq to split a frame at: any valid values do, they are cut out
_PLACEHOLDER_ID = "0" * 32
_ID_START = b'"event_id":"'
_AFTER_SEQ = b',"user_id":'


class RunOp:
    """What an event does to the cluster's run registry."""

    START = "S"
    END = "T"
    NONE = "-"


def split_frame(frame: bytes) -> tuple[bytes, bytes]:
    """The halves of an event frame around its event id and seq: ``head`` ends with
    ``"event_id":"``, ``tail`` starts at ``,"user_id":`` and stops before the closing
    brace (the script closes the frame, or appends the observer stream's fields first)."""
    start = frame.index(_ID_START) + len(_ID_START)
    return frame[:start], frame[frame.index(_AFTER_SEQ, start) : -1]


def placeholder_id() -> str:
    return _PLACEHOLDER_ID


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event for the batch script to number, keep and publish."""

    user_id: str
    head: bytes
    tail: bytes
    action: str
    timestamp: float
    run_id: str
    run_op: str = RunOp.NONE
    run_info: bytes = b""
    #: a reaping node's copy of the lost run's registry entry ("" when not reaping)
    claimed_info: bytes = b""
    claimed_node: str = ""

    def pack(self) -> bytes:
        return FIELD_SEPARATOR.join(
            (
                b"E",
                self.user_id.encode(),
                self.head,
                self.tail,
                self.action.encode(),
                b"%r" % self.timestamp,
                self.run_id.encode(),
                self.run_op.encode(),
                self.run_info,
                self.claimed_info,
                self.claimed_node.encode(),
            )
        )


@dataclass(frozen=True, slots=True)
class ObserverRecord:
    """A delivery report, ``node`` or ``log`` frame, open: without its ``monitor_seq`` and closing
    brace (the script appends them)."""

    open_frame: bytes

    def pack(self) -> bytes:
        return b"O" + FIELD_SEPARATOR + self.open_frame


@dataclass(frozen=True, slots=True)
class LostNodeRecord:
    """A node whose lease ran out, reported once by whichever node sees it first."""

    node_id: str
    entry: bytes
    incarnation: str
    #: the ``node`` frame that reports it, open (as an ``ObserverRecord``'s)
    open_frame: bytes

    def pack(self) -> bytes:
        return FIELD_SEPARATOR.join(
            (b"L", self.node_id.encode(), self.entry, self.incarnation.encode(), self.open_frame)
        )


Record = EventRecord | ObserverRecord | LostNodeRecord


class ChannelFrame(NamedTuple):
    """One numbered frame of a channel (a named tuple: one is made per frame received)."""

    seq: int
    action: str
    event_id: str
    timestamp: float
    frame: bytes


def parse_user_message(data: bytes) -> Iterator[ChannelFrame]:
    """The frames of one message on a user's channel, oldest first."""
    for line in data.split(b"\n"):
        seq, action, event_id, timestamp, frame = line.split(b" ", 4)
        yield ChannelFrame(int(seq), action.decode(), event_id.decode(), float(timestamp), frame)


def parse_observer_message(data: bytes) -> Iterator[ChannelFrame]:
    """The frames of one message on the observer channel (``seq`` is the monitor_seq)."""
    for line in data.split(b"\n"):
        seq, frame = line.split(b" ", 1)
        yield ChannelFrame(int(seq), "d", "", 0.0, frame)
