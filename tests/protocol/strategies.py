"""Hypothesis strategies (and small builders) for wire protocol v1 events and streams.

``streams()`` generates *valid* per-user streams (the sequence rules): several agent runs of one or
more users, interleaved, each user's ``seq`` contiguous 1, 2, 3 … in emission order,
timestamps non-decreasing and every ``event_id`` a unique uuid4 hex. Each run is

    agent_started, then (in any order) 1+ agent_thinking, 1+ tool calls whose
    tool_executing/tool_completed pairs may interleave (parallel tools), 0+ partial_result,
    then optionally agent_error, then agent_completed (status failed after agent_error).

``events()`` generates single valid events of any type with hostile strings (RTL, emoji,
NUL, markup, SQL-looking text …) and arbitrary extra JSON in ``data``, for codec round trips.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from runtime.protocol import Event, EventType

# --- hostile strings ------------------------------------------------------------------

NASTY_STRINGS: tuple[str, ...] = (
    "",
    "\x00",
    "a\x00b",
    "\x00\x01\x02\x1f\x7f",
    "مرحبا بالعالم",  # Arabic, RTL
    "שלום עולם",  # Hebrew, RTL
    "\u202eevil\u202c",  # RTL override
    "abc\u200f\u200edef",  # RTL/LTR marks
    "👩‍👩‍👧‍👦",  # ZWJ family emoji
    "🇺🇦🏳️‍🌈",  # flags
    "e\u0301\u0308\u0323",  # combining marks
    "\ufeffBOM",
    "\u2028\u2029",  # JS line/paragraph separators
    "\U0010ffff\U0001f600",
    "<script>alert('x')</script>",
    "<![CDATA[ ]]> &amp; &lt;",
    "**bold** _it_ `code` [link](javascript:alert(1))",
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "Robert'); DROP TABLE Students;--",
    '{"type": "agent_completed"}',
    '\\u0000 \\n \\" \\\\',
    "\n\r\t\b\f",
    "${jndi:ldap://x}",
    "%s%n%x{0}",
    "null",
    "true",
    "x" * 2000,
)

#: Any text hypothesis can make (no lone surrogates: they are not UTF-8) or a hostile string.
wild_text = st.one_of(st.text(), st.sampled_from(NASTY_STRINGS))
#: As ``wild_text`` but never empty (ids must be non-empty).
wild_ids = st.one_of(st.text(min_size=1), st.sampled_from([s for s in NASTY_STRINGS if s]))

#: JSON-representable scalars that survive an orjson round trip exactly.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    wild_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(wild_text, inner, max_size=4),
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(wild_text, json_values, max_size=4)

finite_timestamps = st.floats(allow_nan=False, allow_infinity=False) | st.integers(
    min_value=0, max_value=2**53
)
durations = st.integers(min_value=0, max_value=10**9) | st.floats(
    min_value=0, max_value=1e9, allow_nan=False
)

# --- builders -------------------------------------------------------------------------


def new_event_id() -> str:
    return uuid.uuid4().hex


def default_data(event_type: EventType | str, **overrides: Any) -> dict[str, Any]:
    """Minimal valid ``data`` for an event type, with ``overrides`` applied."""
    base: dict[str, dict[str, Any]] = {
        "agent_started": {"input": "hello"},
        "agent_thinking": {"reasoning": "thinking", "step": 1},
        "tool_executing": {"tool_call_id": "call_1", "tool_name": "search", "parameters": {}},
        "tool_completed": {
            "tool_call_id": "call_1",
            "tool_name": "search",
            "status": "success",
            "result": "ok",
            "duration_ms": 12,
        },
        "agent_completed": {"status": "completed", "result": "done", "duration_ms": 100},
        "partial_result": {"content": "part", "is_final": False},
        "agent_error": {"error_type": "RuntimeError", "message": "boom"},
    }
    data = dict(base[str(EventType(event_type))])
    data.update(overrides)
    return data


def make_event(
    event_type: EventType | str,
    *,
    seq: int = 1,
    user_id: str = "alice",
    run_id: str = "run_1",
    thread_id: str = "th_1",
    agent_name: str = "data_analyst",
    timestamp: float = 1_795_000_000.0,
    data: Mapping[str, Any] | None = None,
    event_id: str | None = None,
    monitor_seq: int | None = None,
) -> Event:
    """One valid event; ``data`` defaults to ``default_data(event_type)``."""
    return Event(
        type=EventType(event_type),
        event_id=event_id or new_event_id(),
        seq=seq,
        user_id=user_id,
        thread_id=thread_id,
        run_id=run_id,
        agent_name=agent_name,
        timestamp=timestamp,
        data=default_data(event_type) if data is None else data,
        monitor_seq=monitor_seq,
    )


# --- single events --------------------------------------------------------------------


@st.composite
def event_data(draw: st.DrawFn, event_type: EventType) -> dict[str, Any]:
    """Valid ``data`` for ``event_type`` with hostile strings and extra fields."""
    extra = draw(json_objects)
    data: dict[str, Any]
    if event_type is EventType.AGENT_STARTED:
        data = {"input": draw(wild_text)}
    elif event_type is EventType.AGENT_THINKING:
        data = {"reasoning": draw(wild_text), "step": draw(st.integers(1, 2**31))}
    elif event_type is EventType.TOOL_EXECUTING:
        data = {
            "tool_call_id": draw(wild_text),
            "tool_name": draw(wild_text),
            "parameters": draw(json_objects),
        }
    elif event_type is EventType.TOOL_COMPLETED:
        status = draw(st.sampled_from(["success", "error"]))
        outcome = "result" if status == "success" else "error"
        data = {
            "tool_call_id": draw(wild_text),
            "tool_name": draw(wild_text),
            "status": status,
            outcome: draw(json_values),
            "duration_ms": draw(durations),
        }
    elif event_type is EventType.AGENT_COMPLETED:
        status = draw(st.sampled_from(["completed", "failed", "cancelled"]))
        outcome = "result" if status == "completed" else "error"
        data = {"status": status, outcome: draw(json_values), "duration_ms": draw(durations)}
    elif event_type is EventType.PARTIAL_RESULT:
        data = {"content": draw(wild_text), "is_final": draw(st.booleans())}
    else:
        data = {"error_type": draw(wild_text), "message": draw(wild_text)}
    # Required fields win over extra fields of the same name.
    return {**{k: v for k, v in extra.items() if k not in data}, **data}


@st.composite
def events(draw: st.DrawFn, event_type: EventType | None = None) -> Event:
    """Any valid event (of ``event_type`` if given), strings as hostile as they come."""
    etype = event_type or draw(st.sampled_from(list(EventType)))
    return Event(
        type=etype,
        event_id=draw(st.uuids(version=4)).hex,
        seq=draw(st.integers(min_value=1, max_value=2**63 - 1)),
        user_id=draw(wild_ids),
        thread_id=draw(wild_ids),
        run_id=draw(wild_ids),
        agent_name=draw(wild_ids),
        timestamp=draw(finite_timestamps),
        data=draw(event_data(etype)),
        monitor_seq=draw(st.none() | st.integers(min_value=1, max_value=2**63 - 1)),
    )


# --- valid runs and streams -----------------------------------------------------------

Step = tuple[EventType, dict[str, Any]]

_short_text = st.sampled_from(["", "ok", "look up the weather", "سلام", "👍 done", "a\x00b"])


@st.composite
def run_steps(draw: st.DrawFn, text: st.SearchStrategy[str] = _short_text) -> list[Step]:
    """The (type, data) sequence of one valid run, without envelope fields."""
    n_thinking = draw(st.integers(1, 3))
    n_tools = draw(st.integers(1, 3))
    n_partial = draw(st.integers(0, 2))
    tokens = (
        [("think", i) for i in range(n_thinking)]
        + [("exec", i) for i in range(n_tools)]
        + [("done", i) for i in range(n_tools)]
        + [("partial", i) for i in range(n_partial)]
    )
    order = list(draw(st.permutations(tokens)))
    for i in range(n_tools):  # every tool_completed after its tool_executing
        e, d = order.index(("exec", i)), order.index(("done", i))
        if d < e:
            order[e], order[d] = order[d], order[e]

    steps: list[Step] = [(EventType.AGENT_STARTED, {"input": draw(text)})]
    tool_names = [draw(st.sampled_from(["search", "sql", "http_get"])) for _ in range(n_tools)]
    step_no = 0
    for kind, i in order:
        if kind == "think":
            step_no += 1
            steps.append((EventType.AGENT_THINKING, {"reasoning": draw(text), "step": step_no}))
        elif kind == "exec":
            steps.append(
                (
                    EventType.TOOL_EXECUTING,
                    {"tool_call_id": f"call_{i}", "tool_name": tool_names[i], "parameters": {}},
                )
            )
        elif kind == "done":
            ok = draw(st.booleans())
            steps.append(
                (
                    EventType.TOOL_COMPLETED,
                    {
                        "tool_call_id": f"call_{i}",
                        "tool_name": tool_names[i],
                        "status": "success" if ok else "error",
                        ("result" if ok else "error"): draw(text),
                        "duration_ms": draw(st.integers(0, 5000)),
                    },
                )
            )
        else:
            steps.append(
                (EventType.PARTIAL_RESULT, {"content": draw(text), "is_final": draw(st.booleans())})
            )
    if draw(st.booleans()):
        steps.append((EventType.AGENT_ERROR, {"error_type": "ToolError", "message": draw(text)}))
        status = "failed"
    else:
        status = draw(st.sampled_from(["completed", "failed", "cancelled"]))
    outcome = "result" if status == "completed" else "error"
    steps.append(
        (
            EventType.AGENT_COMPLETED,
            {"status": status, outcome: draw(text), "duration_ms": draw(st.integers(0, 60_000))},
        )
    )
    return steps


USER_IDS = ("alice", "bob", "carol", "dave")


@dataclass(frozen=True)
class Stream:
    """A generated valid stream: the events in emission order plus how they group."""

    events: tuple[Event, ...]

    @property
    def users(self) -> list[str]:
        return sorted({e.user_id for e in self.events})

    @property
    def run_keys(self) -> list[tuple[str, str]]:
        return sorted({(e.user_id, e.run_id) for e in self.events})

    def positions_of_user(self, user_id: str) -> list[int]:
        return [i for i, e in enumerate(self.events) if e.user_id == user_id]

    def positions_of_run(self, user_id: str, run_id: str) -> list[int]:
        return [i for i, e in enumerate(self.events) if e.user_id == user_id and e.run_id == run_id]


@st.composite
def streams(
    draw: st.DrawFn,
    *,
    max_users: int = 3,
    max_runs: int = 4,
    text: st.SearchStrategy[str] = _short_text,
) -> Stream:
    """A valid stream: runs of 1..max_users users interleaved, per-user seq contiguous."""
    users = USER_IDS[: draw(st.integers(1, min(max_users, len(USER_IDS))))]
    n_runs = draw(st.integers(1, max_runs))
    runs: list[tuple[str, str, str, list[Step]]] = []
    for r in range(n_runs):
        user = draw(st.sampled_from(users))
        thread = f"th_{draw(st.integers(0, 2))}"
        runs.append((user, f"run_{r}", thread, draw(run_steps(text))))

    schedule = draw(st.permutations([r for r, run in enumerate(runs) for _ in run[3]]))
    total = len(schedule)
    ids = draw(st.lists(st.uuids(version=4), min_size=total, max_size=total, unique=True))
    timestamp = draw(st.floats(min_value=1.7e9, max_value=1.8e9))
    deltas = draw(
        st.lists(
            st.sampled_from([0.0, 0.0, 0.001, 0.25]) | st.floats(0, 3),
            min_size=total,
            max_size=total,
        )
    )

    cursor = [0] * n_runs
    next_seq = dict.fromkeys(users, 1)
    out: list[Event] = []
    for r, event_uuid, delta in zip(schedule, ids, deltas, strict=True):
        user, run_id, thread, steps = runs[r]
        etype, data = steps[cursor[r]]
        cursor[r] += 1
        timestamp += delta
        out.append(
            Event(
                type=etype,
                event_id=event_uuid.hex,
                seq=next_seq[user],
                user_id=user,
                thread_id=thread,
                run_id=run_id,
                agent_name="data_analyst",
                timestamp=timestamp,
                data=data,
            )
        )
        next_seq[user] += 1
    return Stream(tuple(out))
