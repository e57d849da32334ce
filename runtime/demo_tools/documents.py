"""Document tools: BM25 keyword search over the bundled knowledge base, and reading a document.

The knowledge base is ``resources/docs/*.md``; each file starts with a ``# Title`` line and is
identified by its file name without ``.md``. It is loaded once per process, on first use.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..resources import resource_path
from ..tools import Tool, ToolError

MAX_READ_CHARS = 2000
MAX_LIMIT = 10
SNIPPET_CHARS = 240

# BM25's usual defaults: term-frequency saturation and document-length normalisation.
_K1 = 1.5
_B = 0.75
# Titles are short and say what a document is about, so their words count extra.
_TITLE_WEIGHT = 3

_WORD = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*\"(])")
_BLOCK_START = re.compile(r"^(?:[*>|-]|\d+\.\s)")
_MARKUP_PREFIX = re.compile(r"^(?:(?:#+|>|[*-]|\d+\.(?!\d)|\|)\s*)+")
_STOPWORD_LIST = """
    a about after all also am an and any are as at be been before being but by can could did
    do does doing for from had has have how i if in into is it its me more most my no nor not
    of on or our out should so some such than that the their them then there these they this
    those to too under until up very was we were what when where which while who whom why will
    with would you your please tell explain know much many
"""
STOPWORDS = frozenset(_STOPWORD_LIST.split())


def tokenize(text: str) -> list[str]:
    """Lower-cased search terms of ``text``: stopwords dropped, simple plurals folded."""
    return [_fold(word) for word in _WORD.findall(text.lower()) if word not in STOPWORDS]


def _fold(word: str) -> str:
    # A deliberately tiny stemmer, applied alike to documents and queries, so "refunds" and
    # "refundable" match "refund", "caused" matches "cause", and "pricing" matches "price";
    # identifiers such as p99_ms and short words stay as written.
    if not word.isalpha() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("able", "ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class Document:
    """One knowledge-base document."""

    doc: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One ranked search result."""

    doc: str
    title: str
    score: float
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return {"doc": self.doc, "title": self.title, "score": self.score, "snippet": self.snippet}


class DocumentIndex:
    """An in-memory BM25 index over a set of documents."""

    def __init__(self, documents: Iterable[Document]) -> None:
        self.documents: dict[str, Document] = {d.doc: d for d in documents}
        self._term_counts: dict[str, Counter[str]] = {}
        for doc in self.documents.values():
            terms = tokenize(doc.title) * _TITLE_WEIGHT + tokenize(doc.text)
            self._term_counts[doc.doc] = Counter(terms)
        self._lengths = {name: sum(c.values()) for name, c in self._term_counts.items()}
        self._average_length = sum(self._lengths.values()) / max(len(self._lengths), 1)
        self._document_frequency: Counter[str] = Counter()
        for counts in self._term_counts.values():
            self._document_frequency.update(counts.keys())

    @classmethod
    def from_directory(cls, directory: Path) -> DocumentIndex:
        """Index every ``*.md`` file of ``directory``."""
        return cls(_read_document(path) for path in sorted(directory.glob("*.md")))

    def _idf(self, term: str) -> float:
        n, df = len(self.documents), self._document_frequency[term]
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def search(self, query: str, limit: int = 3) -> list[SearchHit]:
        """The ``limit`` best documents for ``query``, best first; documents that share no
        term with the query are left out."""
        terms = set(tokenize(query))
        if not terms:
            raise ToolError(f"query {query!r} has no searchable words")
        idf = {t: self._idf(t) for t in terms}
        scored: list[tuple[float, str]] = []
        for name, counts in self._term_counts.items():
            norm = _K1 * (1 - _B + _B * self._lengths[name] / self._average_length)
            score = sum(
                idf[t] * counts[t] * (_K1 + 1) / (counts[t] + norm) for t in terms if counts[t]
            )
            if score > 0:
                scored.append((score, name))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [
            SearchHit(
                doc=name,
                title=self.documents[name].title,
                score=round(score, 4),
                snippet=best_passage(self.documents[name].text, terms, idf),
            )
            for score, name in scored[:limit]
        ]

    def get(self, doc: str) -> Document:
        """The document called ``doc`` (``.md`` optional); ``ToolError`` if there is none."""
        name = doc.strip().removesuffix(".md")
        found = self.documents.get(name)
        if found is None:
            known = ", ".join(sorted(self.documents)) or "none"
            raise ToolError(f"unknown document {doc!r}; available: {known}")
        return found


def _read_document(path: Path) -> Document:
    text = path.read_text(encoding="utf-8")
    first, _, body = text.partition("\n")
    title = first.removeprefix("# ").strip() if first.startswith("# ") else path.stem
    return Document(doc=path.stem, title=title, text=body.strip())


def sections(text: str) -> list[tuple[str, list[str]]]:
    """Split markdown into ``(heading, sentences)`` pairs; text before the first heading has
    the heading ``""``. Sentences, list items and table rows come without markup, and
    wrapped paragraph lines are joined first so a sentence is never cut at a line break."""
    blocks: list[tuple[str, str]] = []
    heading = ""
    joinable = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            heading = stripped.lstrip("#").strip().replace("**", "").replace("`", "")
            joinable = False
        elif not stripped:
            joinable = False
        elif joinable and not _BLOCK_START.match(stripped):
            blocks[-1] = (heading, blocks[-1][1] + " " + stripped)
        else:
            blocks.append((heading, stripped))
            joinable = not stripped.startswith("|")
    out: list[tuple[str, list[str]]] = []
    for block_heading, block in blocks:
        cleaned = _MARKUP_PREFIX.sub("", block).replace("**", "").replace("`", "")
        found = [
            sentence.strip()
            for sentence in _SENTENCE_BREAK.split(cleaned.strip(" |"))
            if re.search(r"[A-Za-z0-9]{2}", sentence)  # skips table rules such as |---|---|
        ]
        if not found:
            continue
        if out and out[-1][0] == block_heading:
            out[-1][1].extend(found)
        else:
            out.append((block_heading, found))
    return out


def sentences(text: str) -> list[str]:
    """Every sentence, list item and table row of markdown ``text``, without headings."""
    return [sentence for _, found in sections(text) for sentence in found]


def best_passage(
    text: str,
    terms: set[str],
    weights: Mapping[str, float] | None = None,
    max_chars: int = SNIPPET_CHARS,
) -> str:
    """The sentence of ``text`` whose distinct ``terms`` weigh most (each 1 without
    ``weights``); the earliest wins a tie."""

    def weight(sentence: str) -> float:
        found = terms & set(tokenize(sentence))
        return sum(weights.get(t, 0.0) for t in found) if weights else len(found)

    candidates = sentences(text)
    if not candidates:
        return ""
    best = max(candidates, key=weight)
    return best if len(best) <= max_chars else best[: max_chars - 1].rstrip() + "…"


@cache
def knowledge_base() -> DocumentIndex:
    """The bundled knowledge base (``resources/docs``), indexed on first use."""
    return DocumentIndex.from_directory(resource_path("docs"))


def search_documents(query: str, limit: int = 3) -> list[dict[str, Any]]:
    """Ranked keyword search over the knowledge base: ``[{doc, title, score, snippet}]``."""
    if not isinstance(query, str) or not query.strip():
        raise ToolError("query is empty")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ToolError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return [hit.to_dict() for hit in knowledge_base().search(query, limit)]


def read_document(doc: str) -> dict[str, Any]:
    """The text of one document, truncated to ``MAX_READ_CHARS`` characters."""
    if not isinstance(doc, str) or not doc.strip():
        raise ToolError("doc is empty; pass a document id from search_documents")
    document = knowledge_base().get(doc)
    truncated = len(document.text) > MAX_READ_CHARS
    return {
        "doc": document.doc,
        "title": document.title,
        "text": document.text[:MAX_READ_CHARS],
        "truncated": truncated,
        "chars": len(document.text),
    }


def tools() -> list[Tool]:
    """The document tools."""
    return [
        Tool(
            "search_documents",
            "Search the internal knowledge base; returns the best documents with snippets",
            search_documents,
            parameters={"query": "what to look for", "limit": "how many results (1-10)"},
        ),
        Tool(
            "read_document",
            f"Read one knowledge-base document (first {MAX_READ_CHARS} characters)",
            read_document,
            parameters={"doc": "document id, as returned by search_documents"},
        ),
    ]
