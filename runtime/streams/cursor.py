"""``ResumeCursor``: a client's place in a stream, across connections and runtime restarts.

The client half of resume, the same for a chat connection (``seq``), the load generator and
the monitor's capture (``monitor_seq``). It says what to ask for when a connection opens
(``request``), reads the answer in the ``connection_ack`` (``acknowledge``: joined,
resumed, or the runtime restarted), follows the numbers received (``advance``) and takes
the other signs of a restart: a ``resume_ahead`` refusal, or a ``/healthz`` uptime shorter
than the time since the connection was lost.

A restart is the one thing a number alone cannot show: a new runtime counts from 1 again,
so a client that resumed "after 500" from it would skip its first 500 frames. The ack
says it in two ways: its ``last_seq`` is below what we had received, or its
``instance_id`` differs from the one we were receiving from (the only sign left when the
new runtime is already past our number). After a restart the cursor asks for the new
stream from its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from runtime.protocol.errors import ErrorCode

#: the runtime counts as restarted when it has been up for at least this much less than we
#: have been away from it (absorbs clock granularity and ``uptime_s`` rounding)
RESTART_MARGIN = 0.25


class AckKind(StrEnum):
    JOINED = "joined"  # the live stream from now on (nothing asked for)
    RESUMED = "resumed"  # what was missed, then live
    RESTARTED = "restarted"  # a new runtime: reconnect asking for its stream from the start


@dataclass(frozen=True, slots=True)
class AckVerdict:
    """What a ``connection_ack`` means for the stream."""

    kind: AckKind
    #: the ``after_seq`` the connection asked for (None: joined live)
    asked: int | None
    #: the number the next frame of the stream should carry
    expect_next: int
    #: why the runtime counts as restarted ("" otherwise)
    detail: str = ""


class ResumeCursor:
    """Where a client is in one stream (``seq_name``: ``seq`` or ``monitor_seq``)."""

    def __init__(
        self,
        *,
        from_start: bool = False,
        after: int | None = None,
        seq_name: str = "seq",
        stream_name: str = "stream",
    ) -> None:
        """``from_start``: the first connection asks for everything the runtime keeps;
        ``after``: it resumes after that number; neither: it joins the live stream.
        ``seq_name`` and ``stream_name`` name the stream in what a restart's detail says."""
        self.seq_name = seq_name
        self.stream_name = stream_name
        #: the newest number received
        self.position = after or 0
        # joined: the next connection resumes (asks with after_seq) instead of joining live
        self._joined = from_start or after is not None
        # the ack's last_seq when we joined live: frames before it were never wanted
        self._baseline = 0
        self._instance: str | None = None  # the runtime we were receiving from
        self._lost_at: float | None = None  # when the last connection ended

    @property
    def instance(self) -> str | None:
        return self._instance

    def request(self) -> int | None:
        """The ``after_seq`` for the next connection (None: join live)."""
        return max(self.position, self._baseline) if self._joined else None

    def acknowledge(self, last_seq: int, instance_id: str | None, asked: int | None) -> AckVerdict:
        """Read a connection's ack (``asked``: the ``after_seq`` the connection sent)."""
        known = self._instance
        self._instance = instance_id
        self._lost_at = None
        if asked is not None and last_seq < asked:
            return self._restarted(
                asked,
                last_seq,
                f"its {self.stream_name} is at {self.seq_name} {last_seq}, but {asked} had "
                "been received before; what it emitted before the restart and was not "
                "received is lost",
            )
        if asked is not None and known is not None and instance_id not in (None, known):
            # Its stream is past ours, so resuming at ``asked`` would skip its first frames.
            return self._restarted(
                asked,
                last_seq,
                f"it is a new instance ({instance_id[:12]}, was {known[:12]}) whose "
                f"{self.stream_name} is already at {self.seq_name} {last_seq}; what the old "
                f"one emitted after {self.seq_name} {asked} and was not received is lost",
            )
        self._joined = True
        if asked is None:
            self._baseline = last_seq
            return AckVerdict(AckKind.JOINED, None, last_seq + 1)
        # The replay begins after ``asked`` (or where the buffer begins, with a gap report).
        return AckVerdict(AckKind.RESUMED, asked, min(last_seq, asked) + 1)

    def advance(self, seq: int) -> None:
        """A frame numbered ``seq`` arrived."""
        self.position = max(self.position, seq)

    def lost(self, at: float) -> None:
        """The connection ended at ``at`` (a monotonic time)."""
        self._lost_at = at

    @property
    def lost_at(self) -> float | None:
        """When the last connection ended, until the next ack (None: connected or never)."""
        return self._lost_at

    def check_uptime(self, uptime: float, now: float, instance: str | None = None) -> str:
        """The runtime's ``/healthz`` uptime, read at ``now`` while reconnecting: if it came
        up after we lost it, it restarted (the cursor then asks from its start); returns
        why, or "" if it did not.

        ``instance`` is the ``instance_id`` the same answer gave: when it is the one this
        stream was counted in, the process restarted but its streams did not (a node of a
        cluster, whose streams live in Redis), and the cursor resumes as it is."""
        if self._lost_at is None:
            return ""
        if instance is not None and instance == self.instance:
            return ""
        away = now - self._lost_at
        if uptime + RESTART_MARGIN >= away:
            return ""
        self.restart()
        return (
            f"it has been up {uptime:.1f} s, but the connection to it was lost {away:.1f} s "
            "ago; what the old runtime emitted meanwhile is lost"
        )

    def refused(self, code: str) -> bool:
        """An error frame of ``code`` arrived: True if it says the runtime restarted (it
        refused our ``after_seq`` as beyond its stream); the cursor then asks from its start."""
        if code != ErrorCode.RESUME_AHEAD:
            return False
        self.restart()
        return True

    def restart(self) -> None:
        """Forget the old stream: the next connection asks for the new one from its start."""
        self.position = 0
        self._baseline = 0
        self._joined = True
        self._instance = None  # the next ack names the new runtime: nothing to compare
        self._lost_at = None

    def _restarted(self, asked: int, last_seq: int, detail: str) -> AckVerdict:
        self.restart()
        # This connection still gets what the runtime sends it: the frames after ``asked``
        # if it has them, else a ``resume_ahead`` refusal and live frames after ``last_seq``.
        return AckVerdict(AckKind.RESTARTED, asked, min(last_seq, asked) + 1, detail)
