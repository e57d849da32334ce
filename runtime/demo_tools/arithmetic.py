"""Arithmetic tools: a safe expression calculator and a small unit converter.

``calculate`` parses with ``ast`` and walks a whitelist of node types; it never calls
``eval``. Limits on length, exponents and magnitudes keep a hostile expression from eating
CPU or memory, and keep every result a number the wire codec can encode (orjson refuses
integers beyond 64 bits).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from ..tools import Tool, ToolError

MAX_EXPRESSION_LENGTH = 200
MAX_EXPONENT = 100
#: Largest magnitude of any intermediate or final value (below 2**63, so always encodable).
MAX_MAGNITUDE = 10**18

Number = int | float

_BINARY_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPERATORS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
# Notation people type that Python spells differently ("^" would otherwise be XOR).
_NOTATION = str.maketrans({"^": "**", "×": "*", "÷": "/", "−": "-"})


def calculate(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression: numbers, ``+ - * / ** % ^``, parentheses, signs."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("expression is empty")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ToolError(
            f"expression is {len(expression)} characters long; the limit is {MAX_EXPRESSION_LENGTH}"
        )
    source = expression.translate(_NOTATION).strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise ToolError(f"{expression!r} is not a valid arithmetic expression") from None
    value = _evaluate(tree.body)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return {"expression": source, "result": value, "formatted": format_number(value)}


def _evaluate(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ToolError(f"only numbers are allowed, not {node.value!r}")
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPERATORS:
        return _checked(_UNARY_OPERATORS[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent {right:g} is too large (the limit is {MAX_EXPONENT})")
        try:
            return _checked(_BINARY_OPERATORS[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except OverflowError:
            raise ToolError("result is too large") from None
    raise ToolError(_refusal(node))


def _refusal(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return f"names are not allowed ({node.id!r}); use numbers only"
    if isinstance(node, ast.Attribute):
        return "attribute access is not allowed"
    if isinstance(node, ast.Call):
        return "function calls are not allowed"
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        return f"operator {type(node.op).__name__} is not allowed; use + - * / ** %"
    return f"{type(node).__name__} is not allowed in an arithmetic expression"


def _checked(value: Any) -> Number:
    if isinstance(value, complex):
        raise ToolError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("result is too large")
    if abs(value) > MAX_MAGNITUDE:
        raise ToolError(f"result is too large (the limit is {MAX_MAGNITUDE:.0e} in magnitude)")
    return value  # type: ignore[no-any-return]


def format_number(value: Number) -> str:
    """A number for people: integers as they are, floats to 12 significant digits."""
    if isinstance(value, int):
        return str(value)
    return f"{value:.12g}"


# --- unit conversion ------------------------------------------------------------------

#: unit -> (dimension, factor to the dimension's base unit: metre, kilogram)
_LINEAR_UNITS: dict[str, tuple[str, float]] = {
    "mm": ("length", 0.001),
    "cm": ("length", 0.01),
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "in": ("length", 0.0254),
    "ft": ("length", 0.3048),
    "yd": ("length", 0.9144),
    "mi": ("length", 1609.344),
    "g": ("mass", 0.001),
    "kg": ("mass", 1.0),
    "oz": ("mass", 0.028349523125),
    "lb": ("mass", 0.45359237),
}
_TEMPERATURE_UNITS = ("C", "F", "K")
_ALIASES = {
    "millimeter": "mm", "millimeters": "mm", "millimetre": "mm", "millimetres": "mm",
    "centimeter": "cm", "centimeters": "cm", "centimetre": "cm", "centimetres": "cm",
    "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "kilometer": "km", "kilometers": "km", "kilometre": "km", "kilometres": "km",
    "inch": "in", "inches": "in", "foot": "ft", "feet": "ft", "yard": "yd", "yards": "yd",
    "mile": "mi", "miles": "mi",
    "gram": "g", "grams": "g", "kilogram": "kg", "kilograms": "kg", "kgs": "kg",
    "ounce": "oz", "ounces": "oz", "pound": "lb", "pounds": "lb", "lbs": "lb",
    "c": "C", "celsius": "C", "°c": "C", "f": "F", "fahrenheit": "F", "°f": "F",
    "k": "K", "kelvin": "K",
}  # fmt: skip


def unit_symbol(unit: str) -> str | None:
    """The canonical symbol of ``unit`` (``"miles"`` -> ``"mi"``), or None if unknown."""
    key = unit.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in _LINEAR_UNITS or key in _TEMPERATURE_UNITS else None


def convert_units(value: float | int | str, from_unit: str, to_unit: str) -> dict[str, Any]:
    """Convert a length, mass or temperature between common units."""
    amount = _number(value)
    source, target = unit_symbol(str(from_unit)), unit_symbol(str(to_unit))
    for given, symbol in ((from_unit, source), (to_unit, target)):
        if symbol is None:
            known = ", ".join([*_LINEAR_UNITS, *_TEMPERATURE_UNITS])
            raise ToolError(f"unknown unit {given!r}; known units: {known}")
    assert source is not None and target is not None
    if source in _TEMPERATURE_UNITS or target in _TEMPERATURE_UNITS:
        if not (source in _TEMPERATURE_UNITS and target in _TEMPERATURE_UNITS):
            raise ToolError(f"cannot convert {from_unit} to {to_unit}: different dimensions")
        kelvin = _to_kelvin(amount, source)
        if kelvin < 0:
            raise ToolError(f"{value} {from_unit} is below absolute zero")
        converted = _from_kelvin(kelvin, target)
    else:
        (source_dim, source_factor), (target_dim, target_factor) = (
            _LINEAR_UNITS[source],
            _LINEAR_UNITS[target],
        )
        if source_dim != target_dim:
            raise ToolError(
                f"cannot convert {from_unit} ({source_dim}) to {to_unit} ({target_dim})"
            )
        converted = amount * source_factor / target_factor
    rounded = round(converted, 6)
    return {
        "value": amount,
        "from_unit": source,
        "to_unit": target,
        "result": rounded,
        "formatted": f"{format_number(amount)} {source} = {format_number(rounded)} {target}",
    }


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise ToolError("value must be a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.replace(",", ""))
        except ValueError:
            raise ToolError(f"value {value!r} is not a number") from None
    else:
        raise ToolError("value must be a number")
    if not math.isfinite(number) or abs(number) > MAX_MAGNITUDE:
        raise ToolError("value is out of range")
    return number


def _to_kelvin(value: float, unit: str) -> float:
    if unit == "C":
        return value + 273.15
    if unit == "F":
        return (value - 32) * 5 / 9 + 273.15
    return value


def _from_kelvin(kelvin: float, unit: str) -> float:
    if unit == "C":
        return kelvin - 273.15
    if unit == "F":
        return (kelvin - 273.15) * 9 / 5 + 32
    return kelvin


def tools() -> list[Tool]:
    """The arithmetic tools."""
    return [
        Tool(
            "calculate",
            "Evaluate an arithmetic expression (numbers, + - * / ** % and parentheses)",
            calculate,
            parameters={"expression": "the expression, e.g. 12*(3+4)"},
        ),
        Tool(
            "convert_units",
            "Convert a length, mass or temperature value between units",
            convert_units,
            parameters={
                "value": "the number to convert",
                "from_unit": "unit of the value, e.g. km, lb, C",
                "to_unit": "unit to convert to, e.g. mi, kg, F",
            },
        ),
    ]
