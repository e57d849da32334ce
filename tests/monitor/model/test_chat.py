"""``ChatConversation`` and ``RunTranscript``: a run's events as the chat's steps, runs matched
to the messages that started them, and the agents and suggestions the chat offers."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from monitor.model.chat import (
    ChatConversation,
    MessageState,
    Refused,
    RunStatus,
    RunTranscript,
    StepKind,
    ToolStatus,
    chat_agents,
    elide,
    suggestions,
    summarize,
)
from monitor.model.demo_script import PROMPTS
from runtime.protocol import Event, EventType

THREAD = "th_chat_test"
_ids = itertools.count(1)


def event(
    etype: EventType,
    data: dict[str, Any],
    *,
    run: str = "run_1",
    agent: str = "data_analyst",
    thread: str = THREAD,
    event_id: str | None = None,
) -> Event:
    n = next(_ids)
    return Event(
        type=etype,
        event_id=event_id or f"ev{n}",
        seq=n,
        user_id="alice",
        thread_id=thread,
        run_id=run,
        agent_name=agent,
        timestamp=1_795_000_000.0 + n / 100,
        data=data,
    )


def started(text: str, **kw: Any) -> Event:
    return event(EventType.AGENT_STARTED, {"input": text}, **kw)


def thinking(step: int, text: str, **kw: Any) -> Event:
    return event(EventType.AGENT_THINKING, {"reasoning": text, "step": step}, **kw)


def tool_exec(call: str, name: str, **kw: Any) -> Event:
    params = {"dataset": "sales"}
    data = {"tool_call_id": call, "tool_name": name, "parameters": params}
    return event(EventType.TOOL_EXECUTING, data, **kw)


def tool_done(call: str, name: str, *, ok: bool = True, **kw: Any) -> Event:
    data: dict[str, Any] = {"tool_call_id": call, "tool_name": name, "duration_ms": 12.5}
    data.update({"status": "success", "result": {"rows": 144}} if ok else {"status": "error"})
    if not ok:
        data["error"] = "injected failure"
    return event(EventType.TOOL_COMPLETED, data, **kw)


def completed(status: str = "completed", **kw: Any) -> Event:
    data: dict[str, Any] = {"status": status, "duration_ms": 820.0}
    data.update({"result": "Dataset sales: 144 rows."} if status == "completed" else {})
    if status != "completed":
        data["error"] = "ValueError: boom"
    return event(EventType.AGENT_COMPLETED, data, **kw)


def test_a_run_becomes_steps_in_arrival_order_and_a_tool_call_resolves_in_place() -> None:
    run = RunTranscript("run_1", "data_analyst", started_at=10.0)
    assert run.feed(thinking(1, "Which dataset?"), 10.1) == [0]
    assert run.feed(tool_exec("c1", "list_datasets"), 10.2) == [1]
    assert run.steps[1].running and run.tools_running == 1
    assert run.feed(tool_exec("c2", "describe_dataset"), 10.3) == [2]
    # completions arrive out of call order: each resolves its own row, nothing is appended
    assert run.feed(tool_done("c2", "describe_dataset", ok=False), 10.4) == [2]
    assert run.feed(tool_done("c1", "list_datasets"), 10.5) == [1]
    assert [s.tool_status for s in run.steps[1:]] == [ToolStatus.SUCCESS, ToolStatus.ERROR]
    assert run.steps[1].result == {"rows": 144} and run.steps[1].duration_ms == 12.5
    assert run.steps[2].result == "injected failure"
    assert run.feed(event(EventType.PARTIAL_RESULT, {"content": "half", "is_final": False}), 10.6)
    assert run.feed(completed(), 10.9) == []  # the answer is the run's, not a step
    assert [s.kind for s in run.steps] == [
        StepKind.THINKING,
        StepKind.TOOL,
        StepKind.TOOL,
        StepKind.PARTIAL,
    ]
    assert run.status is RunStatus.COMPLETED and run.finished
    assert run.answer == "Dataset sales: 144 rows."
    assert run.duration_ms == 820.0 and run.elapsed(99.0) == pytest.approx(0.9)


def test_a_failed_run_keeps_its_error_and_an_agent_error_is_a_step() -> None:
    run = RunTranscript("run_1", "researcher", started_at=0.0)
    run.feed(thinking(1, "Searching"), 0.1)
    error = {"error_type": "AgentCrash", "message": "injected crash in researcher"}
    assert run.feed(event(EventType.AGENT_ERROR, error), 0.2) == [1]
    run.feed(completed("failed"), 0.3)
    assert run.steps[1].kind is StepKind.ERROR
    assert run.steps[1].text == "AgentCrash: injected crash in researcher"
    assert run.status is RunStatus.FAILED and run.answer == "ValueError: boom"


def test_repeated_events_and_a_second_completion_change_nothing() -> None:
    run = RunTranscript("run_1", "data_analyst", started_at=0.0)
    first = thinking(1, "once", event_id="ev-dup")
    assert run.feed(first, 0.1) == [0]
    assert run.feed(first, 0.2) == []  # a resume re-sent it
    run.feed(completed(), 0.3)
    run.feed(completed("failed"), 0.4)
    assert len(run.steps) == 1 and run.status is RunStatus.COMPLETED and run.ended_at == 0.3


def test_a_sub_agents_steps_are_nested_and_named() -> None:
    run = RunTranscript("run_1", "supervisor", started_at=0.0)
    run.feed(thinking(1, "Routing", agent="supervisor"), 0.1)
    run.feed(tool_exec("d1", "delegate", agent="supervisor"), 0.2)
    run.feed(thinking(2, "Which dataset?", agent="data_analyst"), 0.3)
    assert [(s.agent, s.depth) for s in run.steps] == [
        ("supervisor", 0),
        ("supervisor", 0),
        ("data_analyst", 1),
    ]


def test_a_completion_without_its_start_still_shows_the_outcome() -> None:
    run = RunTranscript("run_1", "data_analyst", started_at=0.0)
    assert run.feed(tool_done("c9", "column_stats", ok=False), 0.1) == [0]
    assert run.steps[0].tool_name == "column_stats"
    assert run.steps[0].tool_status is ToolStatus.ERROR


def test_runs_are_matched_to_messages_by_thread_and_text_in_order() -> None:
    chat = ChatConversation(THREAD)
    first = chat.add_message("revenue by region", "data_analyst", "alice", now=1.0)
    second = chat.add_message("revenue by region", "data_analyst", "alice", now=2.0)
    other = chat.add_message("12 * 7", "calculator", "alice", now=3.0)
    # another conversation of the same user (the demo traffic, another window): not ours
    assert chat.apply(started("revenue by region", thread="th_other", run="run_x"), 3.5) == []
    assert chat.apply(started("revenue by region", run="run_a"), 4.0)[0].message_id == first.id
    assert chat.apply(started("12 * 7", run="run_c"), 4.1)[0].message_id == other.id
    assert chat.apply(started("revenue by region", run="run_b"), 4.2)[0].message_id == second.id
    assert [m.state for m in chat.messages] == [MessageState.STARTED] * 3
    assert chat.run_ids() == ["run_a", "run_b", "run_c"]
    changes = chat.apply(thinking(1, "Which dataset?", run="run_b"), 4.3)
    assert [(c.message_id, c.steps) for c in changes] == [(second.id, (0,))]
    assert [m.id for m in chat.running] == [first.id, second.id, other.id]
    chat.apply(completed(run="run_a"), 5.0)
    assert [m.id for m in chat.running] == [second.id, other.id]
    assert first.run is not None and first.run.started_at == 4.0


def test_events_of_runs_that_match_no_message_are_ignored() -> None:
    chat = ChatConversation(THREAD)
    assert chat.apply(started("nobody asked this"), 1.0) == []
    assert chat.apply(thinking(1, "orphan", run="run_nobody"), 1.1) == []
    assert chat.messages == []


def test_a_refusal_ends_the_message_it_names_once() -> None:
    chat = ChatConversation()
    assert chat.thread_id.startswith("th_chat_")
    message = chat.add_message("hello", "nope", "alice", now=0.0)
    changes = chat.apply(Refused(message.id, "unknown_agent: unknown agent 'nope'"), 0.5)
    assert [c.message_id for c in changes] == [message.id]
    assert message.state is MessageState.REFUSED and "unknown_agent" in message.refusal
    assert chat.apply(Refused(message.id, "again"), 0.6) == []
    assert chat.apply(Refused(999, "no such message"), 0.7) == []
    # a refused message never takes a run with its text
    assert chat.apply(started("hello", run="run_late"), 1.0) == []


def test_tool_parameters_and_results_read_as_one_line() -> None:
    run = RunTranscript("run_1", "data_analyst", started_at=0.0)
    run.feed(tool_exec("c1", "describe_dataset"), 0.1)
    assert run.steps[0].parameters_text() == "dataset=sales"
    assert run.steps[0].result_text() == ""
    stats = {"column": "revenue", "count": 144, "sum": 424863.95, "mean": 2950.4441, "y": 2024}
    assert summarize(stats) == "column=revenue, count=144, sum=424,863.95, mean=2950.44, y=2024"
    listing = [{"dataset": "latency", "columns": ["a", "b"]}, {"dataset": "sales"}]
    assert summarize(listing) == "2 items: dataset=latency, columns=[2 items], …"
    assert summarize([]) == "no items"
    assert summarize("two\nlines") == "two lines"
    assert summarize({"nested": {"a": 1}, "ok": True, "none": None}) == (
        "nested={1 fields}, ok=true, none=null"
    )
    assert elide("abcdef", 4) == "abc…" and elide("abc", 4) == "abc"


def test_the_chat_offers_the_default_agent_first_and_not_the_load_agent() -> None:
    agents = chat_agents()
    assert agents[0].name == "supervisor" and agents[0].default
    assert {a.name for a in agents} == {"supervisor", "calculator", "data_analyst", "researcher"}
    assert all(a.description for a in agents)


def test_suggestions_are_the_demo_prompts_for_that_agent() -> None:
    assert suggestions("data_analyst")[0] == "revenue by region"
    assert set(suggestions("calculator")) == {p.text for p in PROMPTS if p.agent == "calculator"}
    default = {p.text for p in PROMPTS if p.agent is None}
    assert set(suggestions("supervisor")) == default == set(suggestions(None))
