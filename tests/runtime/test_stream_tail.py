"""``StreamTail``: each number forwarded once and in order, holes filled from the stream."""

from __future__ import annotations

import asyncio

from runtime.cluster.records import ChannelFrame
from runtime.cluster.tail import StreamTail


def frame(seq: int, body: bytes | None = None) -> ChannelFrame:
    return ChannelFrame(seq, "d", f"e{seq}", 0.0, body if body is not None else b"f%d" % seq)


class Stream:
    """What Redis keeps of a stream: frames 1..n (an empty one: a number with nothing)."""

    def __init__(self, frames: list[ChannelFrame]) -> None:
        self.frames = frames
        self.reads: list[tuple[int, int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def fetch(self, after: int, upto: int) -> list[ChannelFrame]:
        self.reads.append((after, upto))
        await self.release.wait()
        return [f for f in self.frames if after < f.seq <= upto]


async def test_a_hole_is_filled_before_anything_after_it_goes_out() -> None:
    stream = Stream([frame(n) for n in range(1, 8)])
    forwarded: list[int] = []
    tail = StreamTail("t", lambda f: forwarded.append(f.seq), stream.fetch)
    tail.start_at(0)
    stream.release.clear()
    tail.take([frame(1), frame(2)])
    tail.take([frame(5)])  # 3 and 4 never arrived on the channel
    tail.take([frame(6), frame(7)])  # arrives while the hole is being read
    assert forwarded == [1, 2]
    stream.release.set()
    await tail.catch_up(7)
    assert forwarded == [1, 2, 3, 4, 5, 6, 7]
    assert stream.reads == [(2, 4)]


async def test_numbers_seen_before_are_not_forwarded_again() -> None:
    stream = Stream([frame(n) for n in range(1, 6)])
    forwarded: list[int] = []
    tail = StreamTail("t", lambda f: forwarded.append(f.seq), stream.fetch)
    tail.start_at(2)  # subscribed when the stream was at 2
    tail.take([frame(1), frame(2), frame(3)])
    tail.take([frame(3), frame(4)])
    await tail.catch_up(5)
    assert forwarded == [3, 4, 5]


async def test_a_number_with_nothing_to_send_is_passed_over() -> None:
    stream = Stream([frame(1), frame(2, b""), frame(3)])
    forwarded: list[int] = []
    tail = StreamTail("t", lambda f: forwarded.append(f.seq), stream.fetch)
    tail.start_at(0)
    tail.take([frame(1), frame(3)])
    await tail.catch_up(3)
    assert forwarded == [1, 3]


async def test_a_failed_read_skips_nothing_and_is_tried_again() -> None:
    calls = 0
    kept = [frame(n) for n in range(1, 5)]

    async def flaky(after: int, upto: int) -> list[ChannelFrame]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("Redis went away")
        return [f for f in kept if after < f.seq <= upto]

    forwarded: list[int] = []
    tail = StreamTail("t", lambda f: forwarded.append(f.seq), flaky)
    tail.start_at(0)
    tail.take([frame(1), frame(3)])
    await tail.catch_up(1)  # waits for the failed fill
    assert forwarded == [1]
    tail.take([frame(4)])  # the next message: the hole is read again, then 3 and 4
    await tail.catch_up(4)
    assert forwarded == [1, 2, 3, 4]
