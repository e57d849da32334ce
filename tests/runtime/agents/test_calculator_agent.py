"""``CalculatorAgent`` run end to end over the real tools, checked on the wire."""

from __future__ import annotations

import pytest

from runtime.agents.calculator import (
    DEFAULT_EXPRESSION,
    CalculatorAgent,
    find_conversion,
    find_expression,
    inner_steps,
)
from runtime.faults import FaultConfig
from runtime.protocol import EventType

from .agent_harness import run_agent


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("what is 12*(3+4)?", "12*(3+4)"),
        ("What is 15% of 240?", "15/100*240"),
        ("compute 2^10 please", "2^10"),
        ("3 x 4", "3*4"),
        ("7 minus 10 times 2", "7 - 10 * 2"),
        ("what is 5 squared plus 2", "5**2 + 2"),
        ("what is 1,234 + 5,678?", "1234 + 5678"),
        ("(what is 2+3)", "2+3"),
        ("what is 42?", None),
        ("twelve times seven", None),
        ("deploy on 2024-03-01", None),
        ("", None),
    ],
)
def test_find_expression(text: str, expression: str | None) -> None:
    assert find_expression(text) == expression


def test_inner_steps_are_the_innermost_groups_that_compute() -> None:
    assert inner_steps("(2+3)*(4-1) - (2+3)") == ["2+3", "4-1"]
    assert inner_steps("12*(3+4)") == ["3+4"]
    assert inner_steps("(-3) * 2") == []
    assert inner_steps("(1+2)") == []


def test_find_conversion_needs_two_known_units() -> None:
    found = find_conversion("convert 2,500 ft to metres please")
    assert found is not None
    assert (found.value, found.from_unit, found.to_unit) == ("2500", "ft", "metres")
    assert find_conversion("3 apples to oranges") is None


async def test_answers_with_steps() -> None:
    run = await run_agent(CalculatorAgent(), "what is 12*(3+4)?")
    run.assert_clean()
    assert run.answer == "12*(3+4) = 84\nSteps: 3+4 = 7; 12*(3+4) = 84"
    assert [e.data["parameters"]["expression"] for e in run.tool_calls("calculate")] == [
        "3+4",
        "12*(3+4)",
    ]
    assert [e.data["result"]["result"] for e in run.tool_results("calculate")] == [7, 84]
    assert run.partials == ["3+4 = 7"]
    assert "what is 12*(3+4)?" in run.reasoning[0]
    final = run.events[-1]
    assert final.data["status"] == "completed"
    assert final.data["result"] == run.answer


async def test_evaluates_several_parts_in_parallel() -> None:
    # Tool latency makes the calls overlap on the wire when they really run in parallel.
    run = await run_agent(CalculatorAgent(), "(2+3)*(4-1)", faults=FaultConfig(tool_latency_ms=5))
    run.assert_clean()
    assert run.answer.startswith("(2+3)*(4-1) = 15")
    assert run.max_concurrent("calculate") == 2


async def test_percentages() -> None:
    run = await run_agent(CalculatorAgent(), "What is 15% of 240?")
    run.assert_clean()
    assert run.answer == "15/100*240 = 36"


async def test_without_an_expression_it_explains_and_works_the_default() -> None:
    run = await run_agent(CalculatorAgent(), "hello there")
    run.assert_clean()
    assert "couldn't find anything to calculate in “hello there”" in run.answer
    assert f"{DEFAULT_EXPRESSION} = 84" in run.answer
    assert any("no arithmetic expression" in r for r in run.reasoning)


async def test_a_refused_expression_is_reported_not_raised() -> None:
    run = await run_agent(CalculatorAgent(), "what is 1/0")
    run.assert_clean()
    assert run.answer == "I couldn't calculate 1/0: division by zero."
    (completed,) = run.tool_results("calculate")
    assert completed.data["status"] == "error"
    assert completed.data["error"] == "division by zero"
    assert "division by zero" in run.reasoning[-1]


async def test_unit_conversion_uses_convert_units() -> None:
    run = await run_agent(CalculatorAgent(), "convert 5 km to miles")
    run.assert_clean()
    assert run.answer == "5 km = 3.106856 mi"
    assert not run.tool_calls("calculate")
    (call,) = run.tool_calls("convert_units")
    assert call.data["parameters"] == {"value": "5", "from_unit": "km", "to_unit": "miles"}


async def test_failing_tools_do_not_crash_the_run() -> None:
    run = await run_agent(
        CalculatorAgent(), "what is (1+2)*(3+4)?", faults=FaultConfig(tool_failure_rate=1.0)
    )
    run.assert_clean()
    assert run.answer == "I couldn't calculate (1+2)*(3+4): injected failure in calculate."
    statuses = {e.data["status"] for e in run.of_type(EventType.TOOL_COMPLETED)}
    assert statuses == {"error"}
