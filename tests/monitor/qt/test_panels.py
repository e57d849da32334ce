"""The sessions, findings and inspector panels over a store fed with scripted frames,
including every chaos fault; assertions are on what the widgets show."""

from __future__ import annotations

import orjson
import pytest
from PySide6.QtCore import QModelIndex, Qt
from pytestqt.qtbot import QtBot

from monitor._qt.findings_panel import FindingsPanel
from monitor._qt.inspector import EVICTED_TEXT, InspectorPanel
from monitor._qt.sessions_panel import RUN_INDEX_ROLE, SessionsPanel, SessionTableModel
from monitor.model.session import ObservationSession
from monitor.model.store import EventStore
from runtime.protocol import RULES, EventType

from .scripted import T0, Chaos, Script, chaos_traffic, feed, frames

COLUMNS = SessionTableModel.COLUMNS


def _chaos_session() -> Chaos:
    session = ObservationSession()
    raws, runs = chaos_traffic(Script())
    end = feed(session, raws)
    session.tick(end + 2.0)  # past gap_grace: bob's missing seq is now lost (AEM009)
    session.tick(end + 100.0)  # past every stall threshold: AEM012, AEM013
    session.report_runtime_restart("test: the stream ended")  # AEM016 for open runs
    return Chaos(session, end + 100.0, runs)


@pytest.fixture
def chaos() -> Chaos:
    return _chaos_session()


def _cell(panel: SessionsPanel, run_index: int, column: str) -> str:
    """The text the sessions table shows for one run (through the sorting proxy)."""
    proxy_index = panel.proxy.mapFromSource(panel.model.index(run_index, COLUMNS.index(column)))
    assert proxy_index.isValid()
    return str(proxy_index.data(Qt.ItemDataRole.DisplayRole))


def _run_index(chaos: Chaos, label: str) -> int:
    for run in chaos.session.store.runs:
        if run.run_id == chaos.runs[label]:
            return run.index
    raise AssertionError(f"no run {label}")


# --- sessions ---------------------------------------------------------------------------


def test_sessions_show_one_row_per_run_with_status_and_counts(qtbot: QtBot, chaos: Chaos) -> None:
    panel = SessionsPanel(chaos.session.store)
    qtbot.addWidget(panel)
    panel.refresh(chaos.end)
    assert panel.proxy.rowCount() == len(chaos.runs) == 8

    def status(label: str) -> str:
        return _cell(panel, _run_index(chaos, label), "Status")

    assert status("clean") == "completed"
    assert status("failed") == "failed"
    assert status("cancelled") == "cancelled"
    assert status("no_completed") == "stalled"  # silent past the watchdog threshold
    assert status("tool_hang") == "stalled"
    clean = _run_index(chaos, "clean")
    assert _cell(panel, clean, "User") == "alice"
    assert _cell(panel, clean, "Events") == "6"  # started, 2 thinking, tool pair, completed
    assert _cell(panel, clean, "Findings") == ""
    assert _cell(panel, clean, "Agent") == "analyst"
    assert _cell(panel, _run_index(chaos, "tool_hang"), "Tools") == "1"
    assert _cell(panel, _run_index(chaos, "duplicate"), "Findings") == "1"
    # the duplicate is stored as received (the store keeps every frame)
    assert _cell(panel, _run_index(chaos, "duplicate"), "Events") == "7"
    assert panel.count_label.text() == "8 runs · 2 active"


def test_sessions_put_active_runs_first_newest_on_top(qtbot: QtBot) -> None:
    session = ObservationSession()
    script = Script()
    feed(session, frames(script.run("u1", "run_old_open", status=None)))
    feed(session, frames(script.run("u2", "run_done")), start=T0 + 1)
    feed(session, frames(script.run("u3", "run_new_open", status=None)), start=T0 + 2)
    panel = SessionsPanel(session.store)
    qtbot.addWidget(panel)
    panel.refresh(T0 + 3)
    order = [
        session.store.runs[int(panel.proxy.index(r, 0).data(RUN_INDEX_ROLE))].run_id
        for r in range(panel.proxy.rowCount())
    ]
    assert order == ["run_new_open", "run_old_open", "run_done"]


def test_a_run_that_finishes_moves_below_the_active_ones(qtbot: QtBot) -> None:
    session = ObservationSession()
    script = Script()
    at = feed(session, frames(script.run("u1", "run_old_open", status=None)))
    newest = frames(script.run("u2", "run_new"))
    at = feed(session, newest[:-1], start=at)  # running until its agent_completed
    panel = SessionsPanel(session.store)
    qtbot.addWidget(panel)
    panel.refresh(at)
    panel.select_run(1)

    def order() -> list[str]:
        return [
            session.store.runs[int(panel.proxy.index(r, 0).data(RUN_INDEX_ROLE))].run_id
            for r in range(panel.proxy.rowCount())
        ]

    assert order() == ["run_new", "run_old_open"]
    at = feed(session, newest[-1:], start=at)
    panel.refresh(at)
    assert order() == ["run_new", "run_old_open"]  # held while a row is selected
    panel.anchor.go_live()  # the "N new" chip, or Home
    assert order() == ["run_old_open", "run_new"]
    assert panel.selected_run() == 1  # the selection moved with its row
    panel.select_run(None)
    at = feed(session, frames(script.run("u3", "run_newest")), start=at)
    panel.refresh(at)  # at the live edge with nothing selected: sorted at once
    assert order() == ["run_old_open", "run_newest", "run_new"]


def test_sessions_keep_the_selection_while_rows_arrive_and_change(qtbot: QtBot) -> None:
    session = ObservationSession()
    script = Script()
    feed(session, frames(script.run("u1", "run_a", status=None)))
    panel = SessionsPanel(session.store)
    qtbot.addWidget(panel)
    panel.refresh(T0 + 1)
    with qtbot.waitSignal(panel.run_selected) as selected:
        panel.select_run(0)
    assert selected.args == [0]
    inserted: list[int] = []
    panel.model.rowsInserted.connect(lambda _p, first, last: inserted.append(last - first + 1))
    at = T0 + 1
    for n in range(5):  # new runs arrive above, and the selected run gets more events
        at = feed(session, frames(script.run(f"v{n}", f"run_v{n}")), start=at)
        panel.refresh(at)
        assert panel.selected_run() == 0
    assert sum(inserted) == 5  # one insert per new run, never a reset
    at = feed(session, frames(script.run("u1", "run_a", steps=1, tools=0))[1:], start=at)
    panel.refresh(at)
    assert panel.selected_run() == 0
    assert _status_of(panel, 0) == "completed"  # the selected row changed in place


def _status_of(panel: SessionsPanel, run_index: int) -> str:
    return str(panel.model.index(run_index, COLUMNS.index("Status")).data())


def test_sessions_only_signal_rows_that_changed(qtbot: QtBot) -> None:
    session = ObservationSession()
    script = Script()
    at = feed(session, frames(script.run("u1", "run_a")))
    at = feed(session, frames(script.run("u2", "run_b", status=None)), start=at)
    panel = SessionsPanel(session.store)
    qtbot.addWidget(panel)
    panel.refresh(at + 10)  # both rates have decayed: run_a is settled
    changed: list[int] = []
    panel.model.dataChanged.connect(lambda a, _b, _r=None: changed.append(a.row()))
    feed(session, frames(script.run("u2", "run_b", steps=1, tools=0))[1:2], start=at + 10)
    panel.refresh(at + 10.5)
    assert changed == [1]  # run_b only


def test_selecting_a_row_emits_run_selected_and_clearing_emits_none(qtbot: QtBot) -> None:
    session = ObservationSession()
    feed(session, frames(Script().run("u1", "run_a")))
    panel = SessionsPanel(session.store)
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh(T0 + 1)
    rect = panel.table.visualRect(panel.proxy.index(0, 0))
    with qtbot.waitSignal(panel.run_selected) as selected:
        qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert selected.args == [0]
    with qtbot.waitSignal(panel.run_selected) as cleared:
        panel.select_run(None)
    assert cleared.args == [None]


# --- findings ---------------------------------------------------------------------------


def _finding_rows(panel: FindingsPanel) -> list[tuple[str, ...]]:
    model = panel.model
    return [
        tuple(str(model.index(r, c).data()) for c in range(model.columnCount()))
        for r in range(model.rowCount())
    ]


def test_findings_show_every_chaos_fault_with_its_rule(qtbot: QtBot, chaos: Chaos) -> None:
    panel = FindingsPanel(chaos.session.store)
    qtbot.addWidget(panel)
    panel.refresh(chaos.end)
    rows = _finding_rows(panel)
    by_rule: dict[str, list[tuple[str, ...]]] = {}
    for row in rows:
        by_rule.setdefault(row[2], []).append(row)
    for rule in ("AEM009", "AEM010", "AEM011", "AEM012", "AEM013", "AEM016"):
        assert rule in by_rule, f"{rule} missing from {sorted(by_rule)}"
    (lost,) = by_rule["AEM009"]
    assert lost[1] == "error" and lost[3] == "bob" and lost[5] == "3"
    (dup,) = by_rule["AEM010"]
    assert dup[3] == "carol"
    (late,) = by_rule["AEM011"]
    assert late[3] == "dave"
    assert {r[3] for r in by_rule["AEM012"]} == {"erin", "frank"}
    assert all(r[1] == "warning" for r in by_rule["AEM012"] + by_rule["AEM013"])
    (hang,) = by_rule["AEM013"]
    assert hang[3] == "frank" and "calculator" in hang[6]
    assert {r[3] for r in by_rule["AEM016"]} == {"erin", "frank"}
    # newest first: the restart's findings are on top
    assert rows[0][2] in {"AEM016", "AEM019"}
    by = chaos.session.store.findings_by_severity
    assert panel.count_label.text() == (
        f"{len(rows)} findings ({by['error']} errors, {by['warning']} warnings)"
    )


def test_findings_filter_by_severity_and_rule(qtbot: QtBot, chaos: Chaos) -> None:
    panel = FindingsPanel(chaos.session.store)
    qtbot.addWidget(panel)
    panel.refresh(chaos.end)
    everything = panel.model.rowCount()
    panel.set_severity_visible("error", False)
    assert {r[1] for r in _finding_rows(panel)} == {"warning"}
    assert panel.count_label.text().endswith(f"· {panel.model.rowCount()} shown")
    panel.set_severity_visible("error", True)
    panel.set_rule("AEM012")
    assert {r[2] for r in _finding_rows(panel)} == {"AEM012"}
    assert panel.model.rowCount() == 2
    panel.set_rule(None)
    assert panel.model.rowCount() == everything
    # the rule combo offers every rule of the protocol table
    assert panel.rule_combo.count() == 1 + len(RULES)


def test_findings_arrive_incrementally_at_the_top(qtbot: QtBot) -> None:
    session = ObservationSession()
    script = Script()
    panel = FindingsPanel(session.store)
    qtbot.addWidget(panel)
    resets: list[bool] = []
    panel.model.modelReset.connect(lambda: resets.append(True))
    at = T0
    for n in range(3):
        run = frames(script.run(f"u{n}", f"run_{n}"))
        at = feed(session, [*run[:2], run[1], *run[2:]], start=at)  # one duplicate each
        panel.refresh(at)
        assert panel.model.rowCount() == n + 1
        assert str(panel.model.index(0, 3).data()) == f"u{n}"  # the newest is on top
    assert not resets


def test_findings_stay_cheap_at_100k(qtbot: QtBot) -> None:
    """The store's cap of 100,000 findings fills and rolls over without a model reset."""
    store = EventStore(max_findings=100_000)
    session = ObservationSession(store)
    from runtime.protocol.rules import finding

    for n in range(120_000):
        store.add_finding(finding("AEM020", f"event {n} reached no connection", seq=n + 1), T0)
    panel = FindingsPanel(session.store)
    qtbot.addWidget(panel)
    panel.refresh(T0)
    assert panel.model.rowCount() == 100_000
    for n in range(5_000):
        store.add_finding(finding("AEM021", f"send {n} failed", seq=n + 1), T0 + 1)
    panel.refresh(T0 + 1)
    assert panel.model.rowCount() == 100_000
    assert str(panel.model.index(0, 2).data()) == "AEM021"
    assert panel.count_label.text().startswith("125000 findings (5000 errors, 120000 warnings)")


def test_clicking_a_finding_emits_its_record(qtbot: QtBot, chaos: Chaos) -> None:
    panel = FindingsPanel(chaos.session.store)
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh(chaos.end)
    panel.set_rule("AEM010")
    rect = panel.table.visualRect(panel.model.index(0, 2))
    with qtbot.waitSignal(panel.finding_activated) as activated:
        qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    (record,) = activated.args
    assert record.finding.rule_id == "AEM010"
    assert record.run_index == _run_index(chaos, "duplicate")
    assert record.row is not None


# --- inspector --------------------------------------------------------------------------


def _inspector_rows(panel: InspectorPanel) -> list[tuple[str, ...]]:
    model = panel.model
    return [
        tuple(str(model.index(r, c).data()) for c in range(model.columnCount()))
        for r in range(model.rowCount())
    ]


def test_inspector_lists_newest_first_and_filters(qtbot: QtBot, chaos: Chaos) -> None:
    panel = InspectorPanel(chaos.session.store)
    qtbot.addWidget(panel)
    panel.refresh(chaos.end)
    rows = _inspector_rows(panel)
    assert len(rows) == chaos.session.store.total
    assert rows[0][2] == "frank" and rows[-1][2] == "alice"
    assert panel.count_label.text() == f"{len(rows)} shown"

    panel.set_filter(event_type=EventType.TOOL_EXECUTING)
    panel.refresh(chaos.end)
    assert {r[1] for r in _inspector_rows(panel)} == {"tool_executing"}
    assert panel.model.rowCount() == 8

    panel.set_filter(user_id="dave")
    panel.refresh(chaos.end)
    dave = _inspector_rows(panel)
    assert {r[2] for r in dave} == {"dave"}
    assert [r[4] for r in dave] == ["7", "6", "5", "3", "4", "2", "1"]  # as received

    panel.set_filter(text="THINKING STEP 3")  # case-insensitive, over the raw JSON
    panel.refresh(chaos.end)
    hits = _inspector_rows(panel)
    assert {r[2] for r in hits} == {"bob", "dave"}
    assert all("step 3" in r[5] for r in hits)


def test_inspector_follows_the_selected_run(qtbot: QtBot, chaos: Chaos) -> None:
    panel = InspectorPanel(chaos.session.store)
    qtbot.addWidget(panel)
    erin = _run_index(chaos, "no_completed")
    panel.set_selected_run(erin)
    panel.refresh(chaos.end)
    rows = _inspector_rows(panel)
    assert len(rows) == 5 and {r[2] for r in rows} == {"erin"}
    assert panel.run_combo.currentText() == "open (erin)"  # the run id's tail, and its user
    panel.run_combo.setCurrentIndex(0)  # "All runs" while the session stays selected
    panel.refresh(chaos.end)
    assert panel.model.rowCount() == chaos.session.store.total
    panel.set_selected_run(None)
    assert panel.run_combo.count() == 1


def test_inspector_shows_the_selected_frame_as_indented_json(qtbot: QtBot, chaos: Chaos) -> None:
    panel = InspectorPanel(chaos.session.store)
    qtbot.addWidget(panel)
    panel.refresh(chaos.end)
    last = panel.model.rowCount() - 1  # the oldest: alice's agent_started
    panel.table.selectRow(last)
    text = panel.detail_text
    assert text.startswith('{\n  "type": "agent_started",')
    assert orjson.loads(text)["user_id"] == "alice"
    assert "received" in panel.detail_label.text()
    # a flagged event names its finding above the JSON
    store = chaos.session.store
    record = next(r for r in store.findings if r.finding.rule_id == "AEM011")
    assert record.row is not None
    panel.show_row(record.row)
    assert "AEM011" in panel.detail_label.text()
    assert panel.model.store_row(panel.table.currentIndex().row()) == record.row


def test_inspector_says_when_a_frame_is_no_longer_in_memory(qtbot: QtBot) -> None:
    store = EventStore(raw_capacity=4)
    session = ObservationSession(store)
    feed(session, frames(Script().run("u1", "run_a")))  # 6 events, only 4 frames kept
    panel = InspectorPanel(store)
    qtbot.addWidget(panel)
    panel.refresh(T0 + 1)
    rows = _inspector_rows(panel)
    assert [r[5] for r in rows[-2:]] == [EVICTED_TEXT, EVICTED_TEXT]
    assert rows[0][5] != EVICTED_TEXT
    panel.show_row(0)
    assert panel.detail_text == EVICTED_TEXT


def test_inspector_caps_rows_and_freezes_while_paused(qtbot: QtBot) -> None:
    session = ObservationSession()
    script = Script()
    at = feed(session, [f for n in range(40) for f in frames(script.run(f"u{n}", f"r{n}"))])
    panel = InspectorPanel(session.store, limit=100)
    qtbot.addWidget(panel)
    panel.refresh(at)
    assert panel.model.rowCount() == 100
    assert panel.model.store_row(0) == session.store.total - 1
    panel.set_paused(True)
    frozen_top = panel.model.store_row(0)
    at = feed(session, frames(script.run("late", "r_late")), start=at)
    panel.refresh(at)
    assert panel.model.store_row(0) == frozen_top
    assert "paused" in panel.count_label.text()
    panel.set_paused(False)
    panel.refresh(at)
    assert panel.model.store_row(0) == session.store.total - 1
    assert panel.model.rowCount() == 100


def test_model_index_roles_for_sessions(qtbot: QtBot, chaos: Chaos) -> None:
    panel = SessionsPanel(chaos.session.store)
    qtbot.addWidget(panel)
    panel.refresh(chaos.end)
    indices = {
        int(panel.proxy.index(r, 0).data(RUN_INDEX_ROLE)) for r in range(panel.proxy.rowCount())
    }
    assert indices == set(range(8))
    assert panel.model.data(QModelIndex()) is None
