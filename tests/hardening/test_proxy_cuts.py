"""Connections killed mid-stream by a real TCP proxy, 20 times during a run: the client
resumes with ``after_seq`` each time and receives every event exactly once, in order."""

from __future__ import annotations

from tests.conftest import RuntimeFactory, seconds
from tests.soak.proxy_cuts import CutSpec, resume_through_cuts


async def test_twenty_cuts_during_a_run_lose_and_repeat_nothing(
    make_runtime: RuntimeFactory,
) -> None:
    server = await make_runtime()
    spec = CutSpec(users=2, runs=1, cuts_per_run=20, timeout=seconds(20))
    report = await resume_through_cuts(server.url, server.issue_token, spec)

    assert report.errors == []
    assert report.cuts == 2 * 20
    # every other cut splits a frame, unless it found the run already over
    assert report.mid_frame_cuts >= 10
    assert report.replayed > 0  # cuts did lose frames in flight, and resume brought them back
    assert report.connections == 2 * 21
    assert report.runs == 2
    assert report.events_expected == 2 * (600 + 2 * 10 + 2)
    assert report.events_received == report.events_expected
    assert (report.lost, report.duplicated, report.out_of_order) == (0, 0, 0)
    assert report.findings_by_rule == {}
    assert report.ok
