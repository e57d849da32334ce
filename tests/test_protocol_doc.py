"""docs/protocol.md, the wire protocol's specification, matches the code it specifies.

Each check reads one table of the spec (the first table under a heading) and compares it
with the code, both ways: a row the code does not have and a name the code has but the spec
does not list each fail with a sentence saying which. The checks are functions of the spec's
text, so the last test plants mismatches in a copy of it and makes sure each is reported
readably. The error codes the runtime sends are found by reading its source (``ast``): a
code added there without an ``ErrorCode`` member (and so without a row in the spec) fails.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import orjson
import pytest
from prometheus_client.metrics import MetricWrapperBase

from runtime.config import RuntimeConfig
from runtime.connections import CLOSE_SLOW_CONSUMER
from runtime.metrics import RuntimeMetrics
from runtime.protocol import (
    ERROR_CODES,
    MANDATORY_EVENT_TYPES,
    Cancel,
    ClientMessage,
    ConnectionAck,
    ControlType,
    Delivery,
    ErrorCode,
    ErrorFrame,
    EventType,
    NodeState,
    NodeStatus,
    Ping,
    Resume,
    RunLog,
    UserMessage,
    encode_client_message,
)
from runtime.protocol.codec import (
    CLIENT_MESSAGE_TYPES,
    ENVELOPE_FIELDS,
    delivery_to_dict,
    encode_ack,
    encode_error,
    encode_pong,
    node_status_to_dict,
    run_log_to_dict,
)
from runtime.protocol.events import _REQUIRED_DATA, RUN_STATUSES, TOOL_STATUSES
from runtime.protocol.rules import RULES
from runtime.server import RuntimeServer

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "docs" / "protocol.md"
SPEC_NAME = "docs/protocol.md"
SPEC = SPEC_PATH.read_text(encoding="utf-8")

#: fields every event's ``data`` carries besides its type's own (``runtime/notifier.py``)
DATA_FIELDS_OF_EVERY_EVENT = frozenset({"correlation_id"})
#: the ``connection_ack`` fields ``runtime/connections.py`` adds to the codec's (its ``extra``)
#: node_id: in the ack of a cluster node (runtime.cluster.manager)
ACK_EXTRA_FIELDS = frozenset({"instance_id", "stream", "node_id"})
#: close codes the spec must explain (the runtime's own; websockets' are explained too)
#: 1012 and 1013: a cluster node whose Redis lost its data, or that cannot reach it
CLOSE_CODES_SENT = frozenset({1001, 1009, 1012, 1013, CLOSE_SLOW_CONSUMER})
#: the limits the spec must give, by ``RuntimeConfig`` field
REQUIRED_LIMITS = frozenset(
    {"max_frame_bytes", "send_queue_limit", "replay_buffer", "monitor_replay_buffer"}
)


# --- reading the spec's tables ------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A Markdown table: its header cells and its rows, each cell as written."""

    heading: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def column(self, name: str) -> list[str]:
        """Every row's cell in column ``name``, backticks and padding removed."""
        if name not in self.columns:
            raise AssertionError(
                f"{SPEC_NAME}: the table under '{self.heading}' has no column '{name}' "
                f"(its columns: {', '.join(self.columns)})"
            )
        index = self.columns.index(name)
        return [plain(row[index]) if index < len(row) else "" for row in self.rows]

    def records(self) -> list[dict[str, str]]:
        return [
            {name: plain(row[i]) if i < len(row) else "" for i, name in enumerate(self.columns)}
            for row in self.rows
        ]


def plain(cell: str) -> str:
    """A cell's text without surrounding whitespace and backticks: ``agent_started``."""
    text = cell.strip()
    if len(text) >= 2 and text.startswith("`") and text.endswith("`") and text.count("`") == 2:
        return text[1:-1]
    return text


def _cells(line: str) -> tuple[str, ...]:
    """A table row's cells: split at ``|`` outside code spans and not escaped (``\\|``)."""
    cells: list[str] = []
    current: list[str] = []
    in_code = False
    escaped = False
    for char in line.strip().removeprefix("|"):
        if char == "|" and not in_code and not escaped:
            cells.append("".join(current).strip())
            current = []
            continue
        if char == "`":
            in_code = not in_code
        escaped = char == "\\" and not escaped
        current.append(char)
    if "".join(current).strip():  # a row without its closing pipe
        cells.append("".join(current).strip())
    return tuple(cells)


def _lines_outside_fences(markdown: str) -> Iterator[str]:
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        yield "" if fenced else line


def heading_text(line: str) -> str | None:
    """The text of an ATX heading line, backticks removed; None for any other line."""
    match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
    return match.group(1).replace("`", "") if match else None


def table_under(markdown: str, heading: str) -> Table:
    """The first table after the heading ``heading`` (backticks ignored) and before the next
    heading; ``AssertionError`` saying what is missing otherwise."""
    lines = list(_lines_outside_fences(markdown))
    starts = [i for i, line in enumerate(lines) if heading_text(line) == heading]
    if len(starts) != 1:
        raise AssertionError(
            f"{SPEC_NAME} must have exactly one heading '{heading}' (found {len(starts)})"
        )
    table: list[str] = []
    for line in lines[starts[0] + 1 :]:
        if heading_text(line) is not None:
            break
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    if len(table) < 2 or not set(table[1].replace("|", "").strip()) <= set("-: "):
        raise AssertionError(f"{SPEC_NAME}: no table under the heading '{heading}'")
    columns = tuple(plain(cell) for cell in _cells(table[0]))
    return Table(heading, columns, tuple(_cells(line) for line in table[2:]))


# --- comparing ----------------------------------------------------------------------------


def compare(
    kind: str, heading: str, documented: Iterable[str], in_code: Iterable[str]
) -> list[str]:
    """Sentences for every difference between the names the spec lists and the code's."""
    listed = list(documented)
    have = set(in_code)
    problems = [
        f"{SPEC_NAME} lists {kind} {name} twice (under '{heading}')"
        for name in sorted({n for n in listed if listed.count(n) > 1})
    ]
    problems += [
        f"{SPEC_NAME} lists {kind} {name} which the code does not have (under '{heading}')"
        for name in sorted(set(listed) - have)
    ]
    problems += [
        f"the code has {kind} {name} which {SPEC_NAME} does not list (under '{heading}')"
        for name in sorted(have - set(listed))
    ]
    return problems


def guarded(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """A missing heading or table is a problem to report, like any other."""

    def run(spec: str) -> list[str]:
        try:
            return check(spec)
        except AssertionError as exc:
            return [str(exc)]

    run.__name__ = check.__name__
    return run


def assert_no_problems(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# --- the checks ---------------------------------------------------------------------------


@guarded
def event_type_problems(spec: str) -> list[str]:
    table = table_under(spec, "Event types")
    problems = compare(
        "event type", table.heading, table.column("type"), (t.value for t in EventType)
    )
    mandatory = [r["type"] for r in table.records() if r["mandatory"] == "yes"]
    problems += compare(
        "mandatory event type",
        table.heading,
        mandatory,
        (t.value for t in MANDATORY_EVENT_TYPES),
    )
    return problems


@guarded
def envelope_problems(spec: str) -> list[str]:
    table = table_under(spec, "Envelope")
    documented = table.column("field")
    problems = compare("envelope field", table.heading, documented, ENVELOPE_FIELDS)
    if not problems and tuple(documented) != ENVELOPE_FIELDS:
        problems.append(
            f"{SPEC_NAME} lists the envelope fields in the order {', '.join(documented)}; "
            f"the runtime sends them as {', '.join(ENVELOPE_FIELDS)}"
        )
    return problems


@guarded
def event_data_problems(spec: str) -> list[str]:
    problems: list[str] = []
    for event_type in EventType:
        table = table_under(spec, event_type.value)
        required = [r["field"] for r in table.records() if r["required"] == "yes"]
        in_code = {name for name, _ in _REQUIRED_DATA[event_type]} | DATA_FIELDS_OF_EVERY_EVENT
        problems += compare(f"required {event_type} data field", table.heading, required, in_code)
    return problems


@guarded
def status_value_problems(spec: str) -> list[str]:
    runs = table_under(spec, "agent_completed status values")
    tools = table_under(spec, "tool_completed status values")
    return compare(
        "agent_completed status", runs.heading, runs.column("status"), RUN_STATUSES
    ) + compare("tool_completed status", tools.heading, tools.column("status"), TOOL_STATUSES)


@guarded
def control_frame_problems(spec: str) -> list[str]:
    table = table_under(spec, "Control frames")
    problems = compare(
        "control frame type", table.heading, table.column("type"), (t.value for t in ControlType)
    )
    encoded = {
        ControlType.CONNECTION_ACK: set(orjson.loads(encode_ack(ConnectionAck("u", 0, "v"))))
        | ACK_EXTRA_FIELDS,
        ControlType.ERROR: set(orjson.loads(encode_error(ErrorFrame("c", "m", "r")))),
        ControlType.PONG: set(orjson.loads(encode_pong())),
        ControlType.DELIVERY: set(
            delivery_to_dict(
                Delivery("e", "u", 1, 1, 0, 0.1, monitor_seq=1, recipients=("u",), node="n")
            )
        ),
        ControlType.NODE: set(
            node_status_to_dict(NodeStatus("n", NodeState.LOST, 1.0, "why", monitor_seq=1))
        ),
        ControlType.LOG: set(
            run_log_to_dict(RunLog("ERROR", "l", "m", 1.0, "u", "r", node="n", monitor_seq=1))
        ),
    }
    problems += [
        f"test_protocol_doc.py cannot check the fields of control frame {t.value!r}: add "
        "an encoded example of it to control_frame_problems"
        for t in ControlType
        if t not in encoded
    ]
    for frame_type, in_code in encoded.items():
        fields_table = table_under(spec, frame_type.value)
        problems += compare(
            f"{frame_type} field", fields_table.heading, fields_table.column("field"), in_code
        )
    return problems


@guarded
def client_message_problems(spec: str) -> list[str]:
    table = table_under(spec, "Client messages")
    problems = compare(
        "client message type", table.heading, table.column("type"), CLIENT_MESSAGE_TYPES
    )
    full: dict[str, ClientMessage] = {
        "user_message": UserMessage(text="t", thread_id="th", agent="a", options={"pace": 0}),
        "cancel": Cancel(run_id="r"),
        "resume": Resume(after_seq=0),
        "ping": Ping(),
    }
    for message_type, message in full.items():
        fields_table = table_under(spec, message_type)
        in_code = set(orjson.loads(encode_client_message(message)))
        problems += compare(
            f"{message_type} field", fields_table.heading, fields_table.column("field"), in_code
        )
    return problems


@guarded
def error_code_problems(spec: str) -> list[str]:
    table = table_under(spec, "Error codes")
    problems = compare(
        "error code", table.heading, table.column("code"), (c.value for c in ErrorCode)
    )
    for record in table.records():
        if not record["ref"] or not record["when"]:
            problems.append(
                f"{SPEC_NAME}: error code {record['code']} needs both 'when' and 'ref' "
                "(write null when it refers to nothing)"
            )
    return problems


@guarded
def rule_problems(spec: str) -> list[str]:
    table = table_under(spec, "Sequence rules")
    records = {r["id"]: r for r in table.records()}
    problems = compare("rule", table.heading, table.column("id"), (r.id for r in RULES))
    for rule in RULES:
        row = records.get(rule.id)
        if row is None:
            continue
        for column, value in (("name", rule.name), ("severity", rule.severity.value)):
            if row[column] != value:
                problems.append(
                    f"{SPEC_NAME} gives rule {rule.id} the {column} '{row[column]}'; "
                    f"runtime/protocol/rules.py says '{value}'"
                )
        if row["meaning"] != rule.summary:
            problems.append(
                f"{SPEC_NAME} explains rule {rule.id} as '{row['meaning']}'; "
                f"runtime/protocol/rules.py says '{rule.summary}'"
            )
    if not problems and table.column("id") != [r.id for r in RULES]:
        problems.append(f"{SPEC_NAME} lists the sequence rules out of their id order")
    return problems


def exposed_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every metric a fresh runtime exposes at /metrics: name -> (type, label names)."""
    metrics = RuntimeMetrics()
    labels = {
        value._name: tuple(value._labelnames)
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase)
    }
    exposed: dict[str, tuple[str, tuple[str, ...]]] = {}
    for family in metrics.registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        exposed[name] = (family.type, labels.get(family.name, ()))
    return exposed


def label_names(cell: str) -> tuple[str, ...]:
    """``endpoint` (`ws`, `monitor`), `status``: the names, without the example values."""
    return tuple(re.findall(r"`([^`]+)`", re.sub(r"\([^)]*\)", "", cell)))


@guarded
def metric_problems(spec: str) -> list[str]:
    table = table_under(spec, "Metrics")
    exposed = exposed_metrics()
    problems = compare("metric", table.heading, table.column("metric"), exposed)
    labels_column = table.columns.index("labels")
    for row, record in zip(table.rows, table.records(), strict=True):
        name = record["metric"]
        if name not in exposed:
            continue
        kind, labels = exposed[name]
        if record["type"] != kind:
            problems.append(
                f"{SPEC_NAME} says metric {name} is a {record['type']}; the code makes it a {kind}"
            )
        documented = label_names(row[labels_column]) if labels_column < len(row) else ()
        if set(documented) != set(labels):
            problems.append(
                f"{SPEC_NAME} gives metric {name} the labels {list(documented)}; "
                f"the code gives it {list(labels)}"
            )
    return problems


@guarded
def healthz_problems(spec: str) -> list[str]:
    table = table_under(spec, "/healthz")
    # a node of a cluster adds its broker's state (building one connects to nothing)
    in_code = {
        **RuntimeServer(RuntimeConfig()).health(),
        **RuntimeServer(RuntimeConfig(broker="redis://127.0.0.1:1/0")).health(),
    }
    return compare("/healthz field", table.heading, table.column("field"), in_code)


def _first_number(text: str) -> float | None:
    match = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    return float(match.group().replace(",", "")) if match else None


@guarded
def limit_problems(spec: str) -> list[str]:
    table = table_under(spec, "Limits")
    defaults = RuntimeConfig()
    settings = {f.name for f in fields(RuntimeConfig)}
    problems: list[str] = []
    documented = table.column("setting")
    for record in table.records():
        setting = record["setting"]
        if setting not in settings:
            problems.append(
                f"{SPEC_NAME} lists limit {setting}, which is no setting of the runtime "
                "(runtime/config.py RuntimeConfig)"
            )
            continue
        value = getattr(defaults, setting)
        if _first_number(record["default"]) != value:
            problems.append(
                f"{SPEC_NAME} gives limit {setting} the default '{record['default']}'; "
                f"runtime/config.py says {value}"
            )
    problems += [
        f"{SPEC_NAME} does not give the limit {name} (under 'Limits')"
        for name in sorted(REQUIRED_LIMITS - set(documented))
    ]
    return problems


@guarded
def close_code_problems(spec: str) -> list[str]:
    table = table_under(spec, "Close codes")
    documented = {int(code) for code in table.column("code") if code.isdigit()}
    return [
        f"the runtime closes connections with code {code}, which {SPEC_NAME} does not list "
        "(under 'Close codes')"
        for code in sorted(CLOSE_CODES_SENT - documented)
    ]


CHECKS = (
    event_type_problems,
    envelope_problems,
    event_data_problems,
    status_value_problems,
    control_frame_problems,
    client_message_problems,
    error_code_problems,
    rule_problems,
    metric_problems,
    healthz_problems,
    limit_problems,
    close_code_problems,
)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_spec_matches_the_code(check: Callable[[str], list[str]]) -> None:
    assert_no_problems(check(SPEC))


# --- the error codes the runtime sends ----------------------------------------------------

#: calls that take an error code, and the position of the code among their arguments
CODE_ARGUMENT = {"ErrorFrame": 0, "ProtocolError": 0, "send_error": 1, "_reject": 1}


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _code_argument(node: ast.Call, index: int) -> ast.expr | None:
    for keyword in node.keywords:
        if keyword.arg == "code":
            return keyword.value
    if len(node.args) > index and not any(
        isinstance(a, ast.Starred) for a in node.args[: index + 1]
    ):
        return node.args[index]
    return None


def error_codes_in_source(root: Path, base: Path = ROOT) -> dict[str, list[str]]:
    """Every error code written into the source under ``root`` as the code argument of
    ``ErrorFrame``, ``ProtocolError``, ``send_error`` or ``_reject`` — a string literal, or
    ``ErrorCode.NAME`` — with where (``path:line``, relative to ``base``). Codes passed on
    in variables (``exc.code``) come from one of these calls."""
    found: dict[str, list[tuple[str, int]]] = {}
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(base).as_posix()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _callee(node)
            if name not in CODE_ARGUMENT:
                continue
            argument = _code_argument(node, CODE_ARGUMENT[name])
            code: str | None = None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                code = argument.value
            elif (
                isinstance(argument, ast.Attribute)
                and isinstance(argument.value, ast.Name)
                and argument.value.id == "ErrorCode"
            ):
                member = ErrorCode.__members__.get(argument.attr)
                code = member.value if member is not None else f"ErrorCode.{argument.attr}"
            if code is not None:
                found.setdefault(code, []).append((where, node.lineno))
    return {code: [f"{path}:{line}" for path, line in sorted(at)] for code, at in found.items()}


def test_every_error_code_the_runtime_sends_is_an_error_code() -> None:
    found = error_codes_in_source(ROOT / "runtime")
    # Not vacuous: the codec's and the server's codes are there (a renamed call would hide them).
    assert len(found) >= 10, (
        f"the scan of runtime/ found only these error codes: {sorted(found)}; were ErrorFrame, "
        f"ProtocolError, send_error or _reject renamed? Update CODE_ARGUMENT in {__name__}"
    )
    known = {c.value for c in ErrorCode}
    unknown = [
        f"{place} sends error code '{code}', which runtime.protocol.ErrorCode does not have: "
        f"add it to ErrorCode and ERROR_CODES (runtime/protocol/errors.py) and to the "
        f"'Error codes' table of {SPEC_NAME}"
        for code, places in sorted(found.items())
        if code not in known
        for place in places
    ]
    assert not unknown, "\n".join(unknown)


def test_every_error_code_has_a_description() -> None:
    assert set(ERROR_CODES) == set(ErrorCode)
    for code, description in ERROR_CODES.items():
        assert description.strip() and "\n" not in description, code


def test_the_scan_finds_a_new_code(tmp_path: Path) -> None:
    """The scan sees each call shape the runtime uses (and ErrorCode members)."""
    source = tmp_path / "runtime"
    source.mkdir()
    (source / "fake.py").write_text(
        "raise ProtocolError('made_up_a', 'm')\n"
        "ErrorFrame(code='made_up_b', message='m')\n"
        "self._reject(sub, 'made_up_c', 'm')\n"
        "manager.send_error(sub, 'made_up_d', 'm', None)\n"
        "ErrorFrame(ErrorCode.REPLAY_GAP, 'm')\n"
        "self._reject(sub, exc.code, exc.message)\n",
        encoding="utf-8",
    )
    found = error_codes_in_source(source, tmp_path)
    assert set(found) == {"made_up_a", "made_up_b", "made_up_c", "made_up_d", "replay_gap"}
    assert found["made_up_c"] == ["runtime/fake.py:3"]


# --- a mismatch is reported readably ------------------------------------------------------


def _without_line(spec: str, start: str) -> str:
    lines = spec.splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(start)]
    assert len(kept) == len(lines) - 1, f"the plant's line '{start}' is not in {SPEC_NAME} once"
    return "".join(kept)


def _with_line_after(spec: str, start: str, new: str) -> str:
    lines = spec.splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith(start)]
    assert len(at) == 1, f"the plant's line '{start}' is not in {SPEC_NAME} once"
    return "".join([*lines[: at[0] + 1], new + "\n", *lines[at[0] + 1 :]])


def _replaced(spec: str, old: str, new: str) -> str:
    assert spec.count(old) == 1, f"the plant's text '{old}' is not in {SPEC_NAME} once"
    return spec.replace(old, new)


PLANTS: list[tuple[str, Callable[[str], str], Callable[[str], list[str]], str]] = [
    (
        "event type row deleted",
        lambda s: _without_line(s, "| `agent_thinking` | yes |"),
        event_type_problems,
        f"the code has event type agent_thinking which {SPEC_NAME} does not list "
        "(under 'Event types')",
    ),
    (
        "event type invented",
        lambda s: _with_line_after(s, "| `agent_error` | no |", "| `agent_paused` | no | x |"),
        event_type_problems,
        f"{SPEC_NAME} lists event type agent_paused which the code does not have "
        "(under 'Event types')",
    ),
    (
        "data field made optional",
        lambda s: _replaced(s, "| `step` | integer ≥ 1 | yes |", "| `step` | integer ≥ 1 | no |"),
        event_data_problems,
        f"the code has required agent_thinking data field step which {SPEC_NAME} does not list",
    ),
    (
        "agent_completed status invented",
        lambda s: _with_line_after(
            s, "| `cancelled` | the run was cancelled", "| `timed_out` | x | `error` |"
        ),
        status_value_problems,
        f"{SPEC_NAME} lists agent_completed status timed_out which the code does not have",
    ),
    (
        "control frame row deleted",
        lambda s: _without_line(s, "| `pong` | `/ws`, `/monitor` |"),
        control_frame_problems,
        f"the code has control frame type pong which {SPEC_NAME} does not list",
    ),
    (
        "ack field deleted",
        lambda s: _without_line(s, "| `instance_id` | string | names this runtime instance"),
        control_frame_problems,
        f"the code has connection_ack field instance_id which {SPEC_NAME} does not list",
    ),
    (
        "client message row deleted",
        lambda s: _without_line(s, "| `cancel` | `/ws` |"),
        client_message_problems,
        f"the code has client message type cancel which {SPEC_NAME} does not list",
    ),
    (
        "error code row deleted",
        lambda s: _without_line(s, "| `resume_ahead` |"),
        error_code_problems,
        f"the code has error code resume_ahead which {SPEC_NAME} does not list "
        "(under 'Error codes')",
    ),
    (
        "error code invented",
        lambda s: _with_line_after(s, "| `resume_ahead` |", "| `rate_limited` | x | `null` |"),
        error_code_problems,
        f"{SPEC_NAME} lists error code rate_limited which the code does not have",
    ),
    (
        "rule invented",
        lambda s: _with_line_after(s, "| AEM027 |", "| AEM999 | fake-rule | error | Fake. |"),
        rule_problems,
        f"{SPEC_NAME} lists rule AEM999 which the code does not have (under 'Sequence rules')",
    ),
    (
        "rule severity changed",
        lambda s: _replaced(
            s,
            "| AEM008 | timestamp-decreased | warning |",
            "| AEM008 | timestamp-decreased | error |",
        ),
        rule_problems,
        f"{SPEC_NAME} gives rule AEM008 the severity 'error'; runtime/protocol/rules.py says "
        "'warning'",
    ),
    (
        "metric row deleted",
        lambda s: _without_line(s, "| `aem_replay_gaps_total` |"),
        metric_problems,
        f"the code has metric aem_replay_gaps_total which {SPEC_NAME} does not list",
    ),
    (
        "metric without _total",
        lambda s: _replaced(s, "| `aem_runs_started_total` |", "| `aem_runs_started` |"),
        metric_problems,
        f"{SPEC_NAME} lists metric aem_runs_started which the code does not have",
    ),
    (
        "metric label dropped",
        lambda s: _replaced(
            s,
            "| `aem_tool_calls_total` | counter | `tool`, `status`",
            "| `aem_tool_calls_total` | counter | `status`",
        ),
        metric_problems,
        f"{SPEC_NAME} gives metric aem_tool_calls_total the labels ['status']; the code gives "
        "it ['tool', 'status']",
    ),
    (
        "healthz field deleted",
        lambda s: _without_line(s, "| `uptime_s` | number |"),
        healthz_problems,
        f"the code has /healthz field uptime_s which {SPEC_NAME} does not list",
    ),
    (
        "limit default wrong",
        lambda s: _replaced(
            s, "| `replay_buffer` | 2,000 events |", "| `replay_buffer` | 1,000 events |"
        ),
        limit_problems,
        f"{SPEC_NAME} gives limit replay_buffer the default '1,000 events'; runtime/config.py "
        "says 2000",
    ),
    (
        "close code deleted",
        lambda s: _without_line(s, "| 4008 |"),
        close_code_problems,
        "the runtime closes connections with code 4008, which docs/protocol.md does not list",
    ),
    (
        "table heading renamed",
        lambda s: _replaced(s, "## Error codes\n", "## Errors\n"),
        error_code_problems,
        f"{SPEC_NAME} must have exactly one heading 'Error codes' (found 0)",
    ),
]


@pytest.mark.parametrize(
    ("plant", "check", "expected"),
    [(plant, check, expected) for _, plant, check, expected in PLANTS],
    ids=[name for name, *_ in PLANTS],
)
def test_a_planted_mismatch_is_reported_readably(
    plant: Callable[[str], str], check: Callable[[str], list[str]], expected: str
) -> None:
    planted = plant(SPEC)
    assert planted != SPEC
    problems = check(planted)
    assert any(expected in problem for problem in problems), (
        f"expected a problem containing:\n  {expected}\ngot:\n  " + "\n  ".join(problems)
    )


def test_the_table_parser_reads_a_table_under_its_heading() -> None:
    markdown = (
        "# Top\n\n## `a` things\n\nSome text.\n\n| name | note |\n|---|---|\n| `x` | one |\n"
        "| y | `two` and `three` |\n| | `a|b` |\n\n| other | table |\n|---|---|\n| no | no |\n\n"
        "```\n## not a heading\n```\n## b\n"
    )
    table = table_under(markdown, "a things")
    assert table.columns == ("name", "note")
    assert table.column("name") == ["x", "y", ""]
    assert table.records()[1]["note"] == "`two` and `three`"
    assert table.records()[2] == {"name": "", "note": "a|b"}
    with pytest.raises(AssertionError, match="no table under the heading 'b'"):
        table_under(markdown, "b")
    with pytest.raises(AssertionError, match="exactly one heading 'not a heading'"):
        table_under(markdown, "not a heading")
