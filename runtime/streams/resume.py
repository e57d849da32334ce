"""The answer to a resume request, the same for a user's stream and the observer stream.

A client asks for the entries after ``after_seq`` (at the handshake or with a ``resume``
message). The stream answers with what it still keeps, names what it no longer keeps (a
``replay_gap`` error frame whose ``ref`` is the lost range), and refuses an ``after_seq``
beyond its newest number (``resume_ahead``): such a client counted another stream, most
likely the one of a runtime that has since restarted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from runtime.protocol.codec import ErrorFrame, encode_error
from runtime.protocol.errors import ErrorCode

from .store import StreamStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ResumeAnswer:
    """What a stream sends a resuming connection, ahead of its live frames."""

    #: the requested entries it still keeps, as frames, oldest first
    replay: list[bytes]
    #: the first and last number asked for that are no longer kept
    gap: tuple[int, int] | None = None
    #: why nothing was replayed: ``after_seq`` is beyond the stream
    refusal: ErrorFrame | None = None
    #: the error frame that reports ``gap``
    gap_report: ErrorFrame | None = None

    def frames(self) -> list[bytes]:
        """Everything to send, in order: the refusal or the gap report, then the replay."""
        notice = self.refusal or self.gap_report
        return ([encode_error(notice)] if notice is not None else []) + self.replay


def answer_resume(
    store: StreamStore[T],
    after_seq: int,
    upto: int,
    render: Callable[[int, T], bytes],
    *,
    seq_name: str = "seq",
) -> ResumeAnswer:
    """Answer a request for the entries after ``after_seq`` from a connection that was sent
    everything after ``upto`` live (so nothing past ``upto`` is sent twice)."""
    last = store.last_seq
    if after_seq > last:
        return ResumeAnswer(
            [],
            refusal=ErrorFrame(
                ErrorCode.RESUME_AHEAD,
                f"after_seq {after_seq} is beyond this stream, whose last {seq_name} is "
                f"{last}: the runtime has restarted since, or the count is of another "
                "stream; resume from 0 to get everything it still keeps",
                str(after_seq),
            ),
        )
    first = store.first_seq
    gap = gap_report = None
    if after_seq + 1 < first and after_seq < upto:
        gap = (after_seq + 1, min(first - 1, upto))
        gap_report = ErrorFrame(
            ErrorCode.REPLAY_GAP,
            f"{seq_name} {gap[0]}..{gap[1]} are no longer in the replay buffer "
            f"(it holds {first}..{last}); they cannot be re-sent",
            f"{gap[0]}..{gap[1]}",
        )
    replay = [render(seq, entry) for seq, entry in store.entries(after_seq, upto)]
    return ResumeAnswer(replay, gap, None, gap_report)
