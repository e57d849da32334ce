"""The whole monitor against a real runtime: ``Workspace.embedded`` (runtime + ingest on their
own threads), real chat clients on the GUI thread's qasync loop sending runs with protocol
chaos, and the findings appearing in the real window."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import qasync
from pytestqt.qtbot import QtBot

from monitor._qt.main_window import MainWindow
from monitor.services.workspace import Workspace
from runtime.client import AgentClient
from runtime.protocol import UserMessage
from tests.conftest import seconds

#: long enough runs that every knob certainly fires (as in tests/runtime/test_chaos.py)
RUN = {"steps": 60, "tools": 5, "pace": 0}
#: one fault per user, so each finding is attributable
FAULTS: dict[str, dict[str, Any]] = {
    "bob": {"chaos_drop": 0.3, "seed": 7},
    "carol": {"chaos_duplicate": 0.3, "seed": 7},
    "dave": {"chaos_reorder": 0.3, "seed": 7},
}
#: dropped inside the runtime, so absent from the observer stream too: never emitted (AEM027)
EXPECTED = {"bob": "AEM027", "carol": "AEM010", "dave": "AEM011"}


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    with Workspace.embedded(demo=False) as ws:
        yield ws


@pytest.mark.slow
def test_chaos_sent_through_a_real_runtime_shows_up_in_the_findings_panel(
    qtbot: QtBot, qasync_loop: qasync.QEventLoop, workspace: Workspace
) -> None:
    window = MainWindow(workspace)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: "connected" in window.connection_label.text(), timeout=10_000)
    runtime = workspace.runtime
    assert runtime is not None

    async def send_runs() -> list[AgentClient]:
        clients = []
        for user, faults in FAULTS.items():
            client = await AgentClient.connect(runtime.url, runtime.issue_token(user))
            clients.append(client)
            # A clean run first: the monitor's validator joins streams late (late_join), so
            # chaos on a stream's very first event would be judged against a wrong baseline
            # (reported to the model's owners); here each stream is established first.
            await client.run("warm-up", "load", options={"steps": 2, "tools": 1, "pace": 0})
            await client.send(UserMessage("chaos", agent="load", options={**RUN, "faults": faults}))
        return clients

    # The clients run on the GUI thread's qasync loop, as GUI-side coroutines do in the app;
    # while the test waits below, the runtime buffers their frames (they read them at close).
    clients = qasync_loop.run_until_complete(send_runs())
    try:
        findings = window.findings.model

        def shown() -> set[tuple[str, str]]:
            return {
                (str(findings.index(r, 3).data()), str(findings.index(r, 2).data()))
                for r in range(findings.rowCount())
            }

        qtbot.waitUntil(lambda: set(EXPECTED.items()) <= shown(), timeout=int(seconds(20) * 1000))
        # one session row per run, attributed to the right users
        sessions = window.sessions.model
        qtbot.waitUntil(lambda: sessions.rowCount() == 6)  # a warm-up and a chaos run each
        users = [sessions.run_row(i).user for i in range(6)]  # type: ignore[union-attr]
        assert sorted(users) == sorted([*FAULTS, *FAULTS])
        # nothing reported against the wrong stream
        wrong = {(u, r) for u, r in shown() if r in EXPECTED.values() and EXPECTED.get(u) != r}
        assert not wrong, [
            str(r.finding) for r in workspace.session.store.findings if r.finding.user_id == "dave"
        ]
        store = workspace.session.store
        assert window.findings.count_text().startswith(f"{store.findings_total} findings")
    finally:

        async def close_all() -> None:
            for client in clients:
                await client.close()

        qasync_loop.run_until_complete(close_all())
        window.close()
