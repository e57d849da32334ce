"""``ResearcherAgent``: answers a question from the internal knowledge base.

It searches with two or three phrasings of the question in parallel (the question as asked,
a version expanded with domain synonyms, and a narrow one of its most specific terms), fuses
the rankings, reads the best document and answers with that document's most relevant
sentences, naming its source.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..demo_tools.documents import sections, tokenize
from ..tools import ToolResult
from .base import Agent, RunScope

#: Asked when the message has no searchable words.
DEFAULT_QUESTION = "What is the refund policy for annual plans?"
ANSWER_SENTENCES = 3
# Reciprocal rank fusion constant (Cormack et al. use 60); it keeps one query's top hit from
# outweighing agreement between queries.
_RRF_K = 60
# Words people use for what the knowledge base calls something else.
_SYNONYMS: dict[str, str] = {
    "refund": "money back reimbursement credit",
    "money": "refund payment invoice",
    "price": "pricing plan seat cost",
    "cost": "pricing plan price",
    "limit": "rate throttle 429 quota",
    "throttle": "rate limit 429",
    "outage": "incident postmortem sev1",
    "incident": "postmortem outage severity",
    "delete": "deletion retention erase",
    "keep": "retention period",
    "store": "retention period",
    "deploy": "release rollout rollback canary",
    "release": "deploy rollout",
    "token": "jwt secret signing",
    "secret": "key rotation signing",
    "key": "secret rotation signing",
    "page": "pager on-call alert",
    "alert": "pager on-call page",
    "event": "websocket glossary seq",
    "spinner": "agent_completed frozen stuck",
    "stuck": "agent_completed spinner frozen",
}
# Looked up by search term, so "prices" and "pricing" find the entry for "price".
_SYNONYMS_BY_TERM = {tokenize(word)[0]: extra for word, extra in _SYNONYMS.items()}


@dataclass(frozen=True, slots=True)
class _Candidate:
    doc: str
    title: str
    snippet: str
    fused: float
    top_hits: int  # how many searches ranked it first


def query_variants(question: str) -> list[str]:
    """Up to three phrasings of ``question`` whose search terms differ: as asked, expanded
    with synonyms, and its two most specific words (a single word with no synonyms has
    only itself)."""
    words = list(dict.fromkeys(w for w in re.findall(r"[\w$-]+", question) if tokenize(w)))
    variants = [question]
    expansion = [
        extra for w in words for extra in _SYNONYMS_BY_TERM.get(tokenize(w)[0], "").split()
    ]
    if expansion:
        variants.append(" ".join(dict.fromkeys([*words, *expansion])))
    # The longest words are usually the most specific ("subscription" over "plan").
    specific = sorted(words, key=lambda w: (-len(w), words.index(w)))[:2]
    variants.append(" ".join(specific))
    unique: dict[frozenset[str], str] = {}
    for variant in variants:
        unique.setdefault(frozenset(tokenize(variant)), variant)
    return list(unique.values())[:3]


def fuse(results: Sequence[ToolResult]) -> list[_Candidate]:
    """Merge the successful searches' rankings by reciprocal rank fusion, best first."""
    fused: dict[str, float] = defaultdict(float)
    firsts: dict[str, int] = defaultdict(int)
    seen: dict[str, dict[str, Any]] = {}
    for result in results:
        if not result.ok:
            continue
        for rank, hit in enumerate(result.result, start=1):
            fused[hit["doc"]] += 1 / (_RRF_K + rank)
            firsts[hit["doc"]] += rank == 1
            seen.setdefault(hit["doc"], hit)
    ranked = sorted(fused, key=lambda doc: (-fused[doc], doc))
    return [
        _Candidate(doc, seen[doc]["title"], seen[doc]["snippet"], fused[doc], firsts[doc])
        for doc in ranked
    ]


def relevant_sentences(text: str, question: str, limit: int = ANSWER_SENTENCES) -> list[str]:
    """The ``limit`` sentences of ``text`` that match ``question`` best, in document order.

    A sentence is matched together with its section heading, because headings often carry
    the fact ("Team: $79 per seat"); when the heading contributed, it prefixes the sentence.
    A term that appears in many of the document's sentences (``refund`` in the refund
    policy) says little about which one answers the question, so each term weighs
    ``log(1 + sentences / sentences containing it)``.
    """
    terms = set(tokenize(question))
    candidates = []
    for heading, found in sections(text):
        heading_terms = terms & set(tokenize(heading))
        for sentence in found:
            own = terms & set(tokenize(sentence))
            shown = f"{heading} — {sentence}" if heading_terms - own else sentence
            candidates.append((shown, own | heading_terms))
    spread = Counter(term for _, matched in candidates for term in matched)
    weight = {t: math.log(1 + len(candidates) / spread[t]) for t in spread}
    scored = [
        (sum(weight[t] for t in matched), index, shown)
        for index, (shown, matched) in enumerate(candidates)
        if matched
    ]
    best = sorted(scored, key=lambda s: (-s[0], s[1]))[:limit]
    return [shown for _, _, shown in sorted(best, key=lambda s: s[1])]


class ResearcherAgent(Agent):
    """Answers questions from the internal knowledge base, citing the document it used."""

    name: ClassVar[str] = "researcher"
    description: ClassVar[str] = (
        "Searches the internal knowledge base (policies, runbooks, pricing) and answers "
        "with the relevant passages of the best document"
    )

    async def run(self, scope: RunScope) -> Any:
        question = scope.text.strip()
        preface = ""
        if not tokenize(question):
            preface = (
                f"Your message (“{question}”) has no words I can search for, so I answered "
                f"an example question instead: {DEFAULT_QUESTION}\n\n"
            )
            await scope.think(
                f"“{question}” has no searchable words. Instead of returning nothing I'll "
                f"research an example question, “{DEFAULT_QUESTION}”, and say so.",
                pause=0.3,
            )
            question = DEFAULT_QUESTION

        variants = query_variants(question)
        await scope.think(
            f"Searching the knowledge base for “{question}” with {len(variants)} phrasings at "
            f"once ({'; '.join(variants)}), because one wording can miss a document that "
            "says the same thing differently.",
            pause=0.4,
        )
        results = await scope.call_tools(
            [("search_documents", {"query": v, "limit": 3}) for v in variants]
        )
        failures = [f"“{v}”: {r.error}" for v, r in zip(variants, results, strict=True) if not r.ok]
        candidates = fuse(results)
        if len(failures) == len(results):
            await scope.think(
                f"Every search failed ({'; '.join(failures)}). Without the knowledge base I "
                "can't answer from a source, so I'll report the failure.",
                pause=0.2,
            )
            return f"{preface}I couldn't search the knowledge base for “{question}”: " + "; ".join(
                failures
            )
        if not candidates:
            await scope.think(
                f"No document shares any term with “{question}” under any phrasing; the "
                "knowledge base doesn't cover it.",
                pause=0.2,
            )
            return (
                f"{preface}I found nothing in the knowledge base about “{question}” "
                f"(searched: {'; '.join(variants)})."
            )

        best = candidates[0]
        searched = len(results) - len(failures)
        note = f" ({len(failures)} search(es) failed: {'; '.join(failures)})" if failures else ""
        await scope.think(
            f"Best match: “{best.title}” ({best.doc}), ranked first by {best.top_hits} of "
            f"{searched} searches{note}. Reading it so the answer comes from the document "
            "itself, not just a snippet.",
            pause=0.4,
        )
        document, reading_notes = await self._read_first(scope, candidates[:2])
        used = document["doc"] if document is not None else best.doc
        # Only documents that several searches agree on are worth pointing to.
        others = ", ".join(
            f"“{c.title}” ({c.doc})"
            for c in candidates[:3]
            if c.doc != used and c.fused >= best.fused / 2
        )
        also = f"\n\nAlso relevant: {others}." if others else ""
        if document is None:
            await scope.think(
                f"I couldn't read the documents ({'; '.join(reading_notes)}); answering from "
                "the search snippet and saying so.",
                pause=0.2,
            )
            return (
                f"{preface}From a search snippet of “{best.title}” ({best.doc}) — I couldn't "
                f"open the document itself: {best.snippet}{also}"
            )

        passages = relevant_sentences(document["text"], question) or [best.snippet]
        await scope.think(
            f"Picked the {len(passages)} sentence(s) of “{document['title']}” that share the "
            f"most terms with the question; composing the answer with its source.",
            pause=0.2,
        )
        source = f"According to “{document['title']}” ({document['doc']}):"
        scope.partial(source)
        bullets = "\n".join(f"- {p}" for p in passages)
        return f"{preface}{source}\n{bullets}{also}"

    async def _read_first(
        self, scope: RunScope, candidates: Sequence[_Candidate]
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """Read the first candidate that can be read; the notes say what failed."""
        notes: list[str] = []
        for candidate in candidates:
            outcome = await scope.call_tool("read_document", doc=candidate.doc)
            if outcome.ok:
                return outcome.result, notes
            notes.append(f"{candidate.doc}: {outcome.error}")
            await scope.think(
                f"Reading {candidate.doc} failed ({outcome.error}); trying the next best document.",
                pause=0.2,
            )
        return None, notes
