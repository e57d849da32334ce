"""The monitor's ingest under 20,000 events/s (headless): no crash, no disconnect, every
event stored once with no finding, while its store fills and wraps around
(``python -m tests.soak monitor`` runs it for a minute and checks memory too)."""

from __future__ import annotations

import pytest

from tests.soak.monitor_load import ingest_under_load


@pytest.mark.slow
def test_the_ingest_takes_20000_events_per_s_without_loss() -> None:
    report = ingest_under_load(rate=20_000, duration=3, store_capacity=20_000)

    assert report.ingest_alive
    assert (report.disconnects, report.last_error) == (0, "")
    assert report.stored == report.events == 60_000
    assert report.frames == 1 + 2 * report.events  # the ack, each event and its delivery
    assert report.findings_by_rule == {}
    assert report.lost == 0
