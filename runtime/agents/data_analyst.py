"""``DataAnalystAgent``: summarises a bundled dataset the way the user's message asks.

It picks the dataset the message is about (by its name or its column names), describes it,
computes statistics of the numeric columns in parallel, breaks the main measure down per
group (totals for volumes such as "revenue by region", means for latencies and rates), and
reports the numbers the tools returned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..demo_tools.documents import tokenize
from .base import Agent, RunScope

#: Analysed when the message names no dataset and none of its columns.
DEFAULT_DATASET = "sales"
MAX_STAT_COLUMNS = 4
TOP_GROUPS = 5

_GROUP_PHRASE = re.compile(r"\b(?:by|per|for each|across)\s+([a-z0-9_]+)", re.I)
# Latencies, percentiles and rates: a per-group sum of these means nothing, a mean does.
_NOT_ADDITIVE = re.compile(r"^p\d+|_ms$|latency|rate|ratio|pct|percent", re.I)


@dataclass(frozen=True, slots=True)
class Request:
    """What the message mentions: its words (folded as the search tools fold them) and the
    word after "by"/"per", if any."""

    words: frozenset[str]
    group_word: str | None

    @classmethod
    def parse(cls, text: str) -> Request:
        match = _GROUP_PHRASE.search(text)
        group = tokenize(match.group(1)) if match else []
        return cls(frozenset(tokenize(text)), group[0] if group else None)

    def mentions(self, name: str) -> bool:
        """Whether the message names ``name`` (a dataset or column): in full, or by its first
        part when that is specific enough (``p99`` for ``p99_ms``)."""
        folded = tokenize(name)
        first = tokenize(name.partition("_")[0])
        return bool(folded and folded[0] in self.words) or bool(
            first and len(first[0]) >= 3 and first[0] in self.words
        )

    def names_group(self, column: str) -> bool:
        return self.group_word is not None and self.group_word in tokenize(column)


def choose_dataset(request: Request, catalog: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The dataset the message is about and why: named outright, else the one with the most
    mentioned columns, else ``DEFAULT_DATASET``."""
    named = [d["dataset"] for d in catalog if request.mentions(d["dataset"])]
    if named:
        return named[0], "the message names it"
    by_columns = sorted(
        ((sum(map(request.mentions, d["columns"])), d["dataset"]) for d in catalog),
        key=lambda item: (-item[0], item[1]),
    )
    if by_columns and by_columns[0][0] > 0:
        return by_columns[0][1], f"the message mentions {by_columns[0][0]} of its columns"
    return DEFAULT_DATASET, "the message names no dataset or column, so I use the default"


class DataAnalystAgent(Agent):
    """Summarises a bundled dataset with real statistics and a per-group breakdown."""

    name: ClassVar[str] = "data_analyst"
    description: ClassVar[str] = (
        "Summarises the bundled datasets (sales, latency): column statistics and a "
        "breakdown per group, e.g. revenue by region"
    )

    async def run(self, scope: RunScope) -> Any:
        text = scope.text.strip()
        request = Request.parse(text)
        await scope.think(
            f"Working out which dataset “{text}” is about; listing the available ones first.",
            pause=0.3,
        )
        listing = await scope.call_tool("list_datasets")
        if listing.ok:
            dataset, why = choose_dataset(request, listing.result)
        else:
            dataset, why = DEFAULT_DATASET, f"listing datasets failed ({listing.error})"
        await scope.think(
            f"Using the {dataset} dataset: {why}. Describing it to see which columns are "
            "numeric and which can group rows.",
            pause=0.3,
        )
        described = await scope.call_tool("describe_dataset", dataset=dataset)
        if not described.ok:
            await scope.think(
                f"Describing {dataset} failed ({described.error}); without its columns there "
                "is nothing to analyse, so I'll report the problem.",
                pause=0.2,
            )
            return f"I couldn't analyse the {dataset} dataset: {described.error}."
        info = described.result
        columns = info["columns"]
        numeric = [c["name"] for c in columns if c["type"] == "number"]
        groupable = [c for c in columns if c["type"] == "text" and c.get("distinct", 0) > 1]

        mentioned = [c for c in numeric if request.mentions(c)]
        # The columns asked about come first; the others give them context.
        chosen = [*mentioned, *(c for c in numeric if c not in mentioned)][:MAX_STAT_COLUMNS]
        focus = f"the message asks about {', '.join(mentioned)}" if mentioned else "all of them"
        await scope.think(
            f"{dataset} has {info['rows']} rows; numeric columns: {', '.join(numeric)}. "
            f"Computing statistics for {', '.join(chosen)} in parallel ({focus}).",
            pause=0.4,
        )
        results = await scope.call_tools(
            [("column_stats", {"dataset": dataset, "column": c}) for c in chosen]
        )
        stats = [r.result for r in results if r.ok]
        failed = [f"{c} ({r.error})" for c, r in zip(chosen, results, strict=True) if not r.ok]
        for s in stats:
            scope.partial(_stats_line(s))
        if failed:
            await scope.think(
                f"Statistics failed for {', '.join(failed)}; "
                + ("reporting the rest." if stats else "there is nothing left to report."),
                pause=0.2,
            )
        if not stats:
            return f"I couldn't compute statistics for the {dataset} dataset: {', '.join(failed)}."

        lines = [f"Dataset {dataset}: {info['rows']} rows."]
        lines += [_stats_line(s) for s in stats]
        if failed:
            lines.append(f"Not available: {', '.join(failed)}.")

        totals = await self._group_totals(scope, request, dataset, stats, groupable)
        if totals:
            lines.append(totals)
        await scope.think("Writing up the figures the tools returned.", pause=0.1)
        return "\n".join(lines)

    async def _group_totals(
        self,
        scope: RunScope,
        request: Request,
        dataset: str,
        stats: Sequence[Mapping[str, Any]],
        groupable: Sequence[Mapping[str, Any]],
    ) -> str | None:
        """Break the main measure down per group; a sentence about it, or None."""
        if not groupable:
            return None
        asked = [c for c in groupable if request.names_group(c["name"])]
        if asked:
            group_by, group_reason = asked[0]["name"], "as asked"
        else:
            smallest = min(groupable, key=lambda c: (c["distinct"], c["name"]))
            group_by = smallest["name"]
            group_reason = (
                f"the text column with the fewest distinct values, {smallest['distinct']}"
            )
        named = [s for s in stats if request.mentions(s["column"])]
        # A volume (revenue, requests) has the largest sum, so it is the default measure.
        measure = named[0] if named else max(stats, key=lambda s: s["sum"])
        value = measure["column"]
        additive = not _NOT_ADDITIVE.search(value)
        plan = (
            f"Totalling {value} by {group_by} ({group_reason}) to see how it splits across "
            "the groups."
            if additive
            else f"Grouping {value} by {group_by} ({group_reason}) to compare the mean per "
            "group: adding up a latency or a rate would mean nothing."
        )
        await scope.think(plan, pause=0.3)
        outcome = await scope.call_tool(
            "group_totals", dataset=dataset, group_by=group_by, value=value
        )
        if not outcome.ok:
            await scope.think(
                f"Totals by {group_by} failed ({outcome.error}); the statistics stand alone.",
                pause=0.2,
            )
            return f"Totals of {value} by {group_by} are not available: {outcome.error}."
        groups = outcome.result["groups"]
        if additive:
            return _describe_totals(value, group_by, groups, outcome.result["grand_total"])
        return _describe_means(value, group_by, groups)


def _describe_totals(
    value: str, group_by: str, groups: Sequence[Mapping[str, Any]], grand: float
) -> str:
    shown = groups[:TOP_GROUPS]
    parts = [f"{g['group']} {_number(g['total'])} ({_share(g['total'], grand)})" for g in shown]
    top = shown[0]
    return (
        f"{value} by {group_by} (total {_number(grand)}): {', '.join(parts)}"
        f"{_more(groups, shown)}. Largest: {top['group']} with {_share(top['total'], grand)} "
        "of the total."
    )


def _describe_means(value: str, group_by: str, groups: Sequence[Mapping[str, Any]]) -> str:
    ranked = sorted(groups, key=lambda g: (-g["mean"], g["group"]))
    shown = ranked[:TOP_GROUPS]
    parts = [f"{g['group']} {_number(g['mean'])}" for g in shown]
    top = shown[0]
    return (
        f"mean {value} by {group_by}: {', '.join(parts)}{_more(groups, shown)}. "
        f"Highest: {top['group']} at {_number(top['mean'])}."
    )


def _more(groups: Sequence[Mapping[str, Any]], shown: Sequence[Mapping[str, Any]]) -> str:
    more = len(groups) - len(shown)
    return f", and {more} more" if more > 0 else ""


def _stats_line(stats: Mapping[str, Any]) -> str:
    stdev = "n/a" if stats["stdev"] is None else _number(stats["stdev"])
    return (
        f"{stats['column']}: mean {_number(stats['mean'])}, median {_number(stats['median'])}, "
        f"stdev {stdev}, min {_number(stats['min'])}, max {_number(stats['max'])} "
        f"(n={stats['count']})"
    )


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"
