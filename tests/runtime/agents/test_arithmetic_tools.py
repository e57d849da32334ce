"""The arithmetic tools: ``calculate`` and ``convert_units``."""

from __future__ import annotations

import builtins
from typing import Any

import orjson
import pytest

from runtime.demo_tools.arithmetic import (
    MAX_EXPRESSION_LENGTH,
    calculate,
    convert_units,
    tools,
)
from runtime.tools import ToolError


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("12*(3+4)", 84),
        ("2^10", 1024),
        ("2 ** 10", 1024),
        ("-3**2", -9),
        ("(1 + 2) * -3", -9),
        ("7/2", 3.5),
        ("10 % 4", 2),
        ("2**-1", 0.5),
        ("+5 - -5", 10),
        ("6 × 7 ÷ 3", 14),
        ("1.5e3 + 0.5", 1500.5),
        ("((((1))))", 1),
    ],
)
def test_calculate_known_results(expression: str, expected: float) -> None:
    result = calculate(expression)
    assert result["result"] == pytest.approx(expected)
    assert result["formatted"] == f"{expected:g}"


def test_calculate_returns_whole_numbers_as_int_and_rounds_display() -> None:
    assert calculate("8/4")["result"] == 2
    assert isinstance(calculate("8/4")["result"], int)
    sum_ = calculate("0.1+0.2")
    assert sum_["result"] == pytest.approx(0.3)
    assert sum_["formatted"] == "0.3"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("x + 1", "names are not allowed"),
        ("__import__('os').system('true')", "function calls are not allowed"),
        ("abs(-1)", "function calls are not allowed"),
        ("(1).real", "attribute access is not allowed"),
        ("().__class__", "attribute access is not allowed"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("1j * 2", "only numbers are allowed"),
        ("[1, 2]", "List is not allowed"),
        ("1 if 1 else 0", "IfExp is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("3 // 2", "FloorDiv is not allowed"),
        ("1 << 40", "LShift is not allowed"),
        ("1 < 2", "Compare is not allowed"),
        ("2**1000", "exponent 1000 is too large"),
        ("2**(10*11)", "exponent 110 is too large"),
        ("9**99", "result is too large"),
        ("10**18 * 10", "result is too large"),
        ("1e400", "result is too large"),
        ("10.0**99 * 10.0**99", "result is too large"),
        ("1/0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0**-1", "division by zero"),
        ("(-8)**0.5", "not a real number"),
        ("2 +", "not a valid arithmetic expression"),
        ("", "expression is empty"),
        ("   ", "expression is empty"),
    ],
)
def test_calculate_refuses(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        calculate(expression)


def test_calculate_caps_expression_length() -> None:
    expression = "1+" * MAX_EXPRESSION_LENGTH + "1"
    with pytest.raises(ToolError, match="limit is 200"):
        calculate(expression)


def test_calculate_never_uses_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval/exec must not be called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert calculate("2*(3+4)")["result"] == 14


def test_results_are_encodable_on_the_wire() -> None:
    # orjson refuses integers beyond 64 bits; the magnitude cap keeps every result encodable.
    for expression in ("10**18", "-(10**18)", "99**9", "2**0.5"):
        orjson.dumps(calculate(expression))
    with pytest.raises(ToolError):
        calculate("10**18 + 1 + 10**18")


@pytest.mark.parametrize(
    ("value", "source", "target", "expected", "formatted"),
    [
        (5, "km", "miles", 3.106856, "5 km = 3.106856 mi"),
        ("1,000", "m", "km", 1, "1000 m = 1 km"),
        (12, "inches", "cm", 30.48, "12 in = 30.48 cm"),
        (2, "lbs", "kg", 0.907185, "2 lb = 0.907185 kg"),
        (100, "F", "celsius", 37.777778, "100 F = 37.777778 C"),
        (0, "C", "K", 273.15, "0 C = 273.15 K"),
        (-40, "c", "f", -40, "-40 C = -40 F"),
    ],
)
def test_convert_units(
    value: object, source: str, target: str, expected: float, formatted: str
) -> None:
    result = convert_units(value, source, target)  # type: ignore[arg-type]
    assert result["result"] == pytest.approx(expected)
    assert result["formatted"] == formatted


@pytest.mark.parametrize(
    ("value", "source", "target", "message"),
    [
        (1, "parsec", "m", "unknown unit 'parsec'"),
        (1, "m", "furlong", "unknown unit 'furlong'"),
        (1, "km", "kg", r"cannot convert km \(length\) to kg \(mass\)"),
        (1, "C", "kg", "different dimensions"),
        (-500, "C", "F", "below absolute zero"),
        ("ten", "m", "km", "'ten' is not a number"),
        (True, "m", "km", "value must be a number"),
        (None, "m", "km", "value must be a number"),
        (float("inf"), "m", "km", "out of range"),
    ],
)
def test_convert_units_refuses(value: object, source: str, target: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        convert_units(value, source, target)  # type: ignore[arg-type]


def test_tools_are_described() -> None:
    by_name = {tool.name: tool for tool in tools()}
    assert set(by_name) == {"calculate", "convert_units"}
    for tool in by_name.values():
        assert tool.description
        assert tool.parameters
    assert set(by_name["convert_units"].parameters) == {"value", "from_unit", "to_unit"}
