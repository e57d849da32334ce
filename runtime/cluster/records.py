"""What a node sends the batch script and what it reads back from the channels, as plain
values (no I/O): see ``runtime.cluster.scripts`` for the script's side.

An event's frame is numbered in Redis, so a node sends it in two halves around its
``event_id`` and ``seq``; the script joins them with the numbers it takes, which makes the
frame byte for byte what the in-memory engine sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runtime.faults import ChaosAction

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
    ``"event_id":"``, ``tail`` starts at ``,"user_id":``."""
    start = frame.index(_ID_START) + len(_ID_START)
    return frame[:start], frame[frame.index(_AFTER_SEQ, start) :]


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

    def argv(self) -> list[bytes | str]:
        return [
            "E",
            self.user_id,
            self.head,
            self.tail,
            self.action,
            repr(self.timestamp),
            self.run_id,
            self.run_op,
            self.run_info,
            self.claimed_info,
            self.claimed_node,
        ]


@dataclass(frozen=True, slots=True)
class ObserverRecord:
    """A delivery report or ``node`` frame, without its ``monitor_seq``."""

    frame: bytes

    def argv(self) -> list[bytes | str]:
        return ["O", self.frame]


@dataclass(frozen=True, slots=True)
class LostNodeRecord:
    """A node whose lease ran out, reported once by whichever node sees it first."""

    node_id: str
    entry: bytes
    incarnation: str
    frame: bytes

    def argv(self) -> list[bytes | str]:
        return ["L", self.node_id, self.entry, self.incarnation, self.frame]


Record = EventRecord | ObserverRecord | LostNodeRecord


@dataclass(frozen=True, slots=True)
class ChannelFrame:
    """One numbered frame of a user's channel."""

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
