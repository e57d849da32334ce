"""``CalculatorAgent``: finds the arithmetic (or unit conversion) in a message and works it out.

It reads expressions the way people type them ("12 times (3 + 4)", "15% of 240", "2^10",
"5 km in miles"), shows its steps by evaluating parenthesised parts first, and answers a
default question, saying so, when the message contains nothing to compute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ..demo_tools.arithmetic import unit_symbol
from .base import Agent, RunScope

#: Asked when the message contains nothing to compute.
DEFAULT_EXPRESSION = "12*(3+4)"
MAX_STEPS = 3

_WORD_OPERATORS = (
    (re.compile(r"\bto the power of\b", re.I), "**"),
    (re.compile(r"\bmultiplied by\b", re.I), "*"),
    (re.compile(r"\bdivided by\b", re.I), "/"),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"\btimes\b", re.I), "*"),
    (re.compile(r"\b(?:mod|modulo)\b", re.I), "%"),
    (re.compile(r"\s*\bsquared\b", re.I), "**2"),
    (re.compile(r"\s*\bcubed\b", re.I), "**3"),
)
# "3 x 4" means multiplication only between numbers, so "x" in words is left alone.
_TIMES_X = re.compile(r"(?<=[\d)])\s*[xX]\s*(?=[\d(])")
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*of\s+(\d+(?:\.\d+)?)", re.I)
# Dates look like subtraction ("2024-03-01") but are never meant as one.
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_EXPRESSION_RUN = re.compile(r"[\d.+\-*/%^()×÷\s]+")
_OPERATOR_BETWEEN = re.compile(r"[\d)]\s*(?:\*\*|[-+*/%^×÷])\s*[-+(]*\s*[\d(]")
_INNER_GROUP = re.compile(r"\(([^()]+)\)")
_CONVERSION = re.compile(
    r"(-?\d[\d,]*(?:\.\d+)?)\s*(°?[a-z]+)\s+(?:to|in|into|as)\s+(°?[a-z]+)", re.I
)


@dataclass(frozen=True, slots=True)
class Conversion:
    """A unit conversion asked for in the message."""

    value: str
    from_unit: str
    to_unit: str


def find_conversion(text: str) -> Conversion | None:
    """``5 km to miles`` and the like, when both units are known."""
    for match in _CONVERSION.finditer(text):
        value, source, target = match.groups()
        if unit_symbol(source) and unit_symbol(target):
            return Conversion(value.replace(",", ""), source, target)
    return None


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in ``text`` (with word operators translated), or
    None when there is no number-operator-number in it."""
    normalized = _THOUSANDS.sub("", text)
    normalized = _DATE.sub(" ", normalized)
    normalized = _PERCENT_OF.sub(r"\1/100*\2", normalized)
    for pattern, symbol in _WORD_OPERATORS:
        normalized = pattern.sub(symbol, normalized)
    normalized = _TIMES_X.sub("*", normalized)
    candidates = [
        _balance(run.strip())
        for run in _EXPRESSION_RUN.findall(normalized)
        if _OPERATOR_BETWEEN.search(run)
    ]
    candidates = [c for c in candidates if _OPERATOR_BETWEEN.search(c)]
    if not candidates:
        return None
    return re.sub(r"\s+", " ", max(candidates, key=len)).strip()


def _balance(expression: str) -> str:
    """Drop what belongs to the surrounding prose: parentheses as in ``(what is 2+3)``, a
    dangling operator as in ``2+3 - and more``."""
    expression = expression.strip(" .").rstrip(" +-*/%^×÷").lstrip(" *,/%^×÷")
    while expression.count(")") > expression.count("(") and expression.endswith(")"):
        expression = expression[:-1].rstrip()
    while expression.count("(") > expression.count(")") and expression.startswith("("):
        expression = expression[1:].lstrip()
    return expression


def inner_steps(expression: str) -> list[str]:
    """The innermost parenthesised sub-expressions that do some arithmetic (at most
    ``MAX_STEPS``, in order, without repeats)."""
    steps: list[str] = []
    for group in _INNER_GROUP.findall(expression):
        inner = group.strip()
        if _OPERATOR_BETWEEN.search(inner) and inner not in steps and f"({inner})" != expression:
            steps.append(inner)
    return steps[:MAX_STEPS]


class CalculatorAgent(Agent):
    """Works out the arithmetic or unit conversion in the user's message with real tools."""

    name: ClassVar[str] = "calculator"
    description: ClassVar[str] = (
        "Evaluates arithmetic (12*(3+4), 15% of 240, 2^10) and converts units (5 km in miles)"
    )

    async def run(self, scope: RunScope) -> Any:
        text = scope.text.strip()
        await scope.think(
            f"Reading “{_quote(text)}” to find a calculation or a unit conversion.", pause=0.3
        )
        conversion = find_conversion(text)
        if conversion is not None:
            return await self._convert(scope, conversion)

        expression = find_expression(text)
        preface = ""
        if expression is None:
            expression = DEFAULT_EXPRESSION
            preface = (
                f"I couldn't find anything to calculate in “{_quote(text)}”, so here is a "
                f"worked example instead: {DEFAULT_EXPRESSION}.\n"
            )
            await scope.think(
                "There is no arithmetic expression in the message (no number-operator-number)."
                f" Rather than fail, I'll work a default example, {DEFAULT_EXPRESSION}, and"
                " say so in the answer.",
                pause=0.3,
            )

        steps = inner_steps(expression)
        lines: list[str] = []
        if steps:
            parts = "part" if len(steps) == 1 else "parts, in parallel,"
            await scope.think(
                f"The expression is {expression}. I'll evaluate its parenthesised {parts} "
                f"({', '.join(steps)}) first so the answer can show its steps.",
                pause=0.4,
            )
            results = await scope.call_tools([("calculate", {"expression": s}) for s in steps])
            for step, result in zip(steps, results, strict=True):
                if result.ok:
                    line = f"{step} = {result.result['formatted']}"
                    lines.append(line)
                    scope.partial(line)
                else:
                    await scope.think(
                        f"The step {step} failed ({result.error}); the full evaluation will "
                        "tell whether the whole expression is affected.",
                        pause=0.2,
                    )
        else:
            await scope.think(
                f"The expression is {expression}; it has no parenthesised parts, so I'll "
                "evaluate it in one go.",
                pause=0.3,
            )

        outcome = await scope.call_tool("calculate", expression=expression)
        if not outcome.ok:
            await scope.think(
                f"The calculator refused {expression}: {outcome.error}. I'll explain the "
                "problem instead of guessing a number.",
                pause=0.2,
            )
            return f"{preface}I couldn't calculate {expression}: {outcome.error}."
        answer = f"{outcome.result['expression']} = {outcome.result['formatted']}"
        await scope.think(f"Got {answer}; writing up the result.", pause=0.1)
        if lines:
            return f"{preface}{answer}\nSteps: " + "; ".join([*lines, answer])
        return f"{preface}{answer}"

    async def _convert(self, scope: RunScope, conversion: Conversion) -> str:
        await scope.think(
            f"This asks for a unit conversion: {conversion.value} {conversion.from_unit} to "
            f"{conversion.to_unit}. convert_units knows the exact factors, so I'll use it "
            "rather than arithmetic.",
            pause=0.3,
        )
        outcome = await scope.call_tool(
            "convert_units",
            value=conversion.value,
            from_unit=conversion.from_unit,
            to_unit=conversion.to_unit,
        )
        if not outcome.ok:
            await scope.think(f"The conversion failed: {outcome.error}. Reporting that.", pause=0.2)
            return (
                f"I couldn't convert {conversion.value} {conversion.from_unit} to "
                f"{conversion.to_unit}: {outcome.error}."
            )
        await scope.think(f"Converted: {outcome.result['formatted']}.", pause=0.1)
        return str(outcome.result["formatted"])


def _quote(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
