"""The document tools, and the bundled knowledge base they search."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.demo_tools.documents import (
    MAX_READ_CHARS,
    DocumentIndex,
    read_document,
    search_documents,
    sentences,
    tokenize,
    tools,
)
from runtime.resources import ENV_VAR, resource_path
from runtime.tools import ToolError

DOCS = sorted(resource_path("docs").glob("*.md"))


def test_knowledge_base_has_eight_to_ten_short_titled_documents() -> None:
    assert 8 <= len(DOCS) <= 10
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# "), path.name
        assert 150 <= len(text.split()) <= 400, path.name


@pytest.mark.parametrize(
    ("query", "doc"),
    [
        ("refund annual plan", "refund-policy"),
        ("How long do we keep chat transcripts?", "data-retention-policy"),
        ("429 too many requests", "api-rate-limits"),
        ("what to do when the pager fires", "on-call-runbook"),
        ("rotate the JWT signing secret", "signing-key-rotation"),
        ("can we deploy on fridays", "deploy-checklist"),
        ("enterprise price per seat", "pricing-tiers"),
        ("what does tool_executing mean", "websocket-event-glossary"),
        ("why did the search timeout leave chats stuck in March", "incident-postmortem-2024-03"),
    ],
)
def test_search_ranks_the_right_document_first(query: str, doc: str) -> None:
    hits = search_documents(query)
    assert hits[0]["doc"] == doc


def test_search_result_shape_order_and_limit() -> None:
    hits = search_documents("annual refund", limit=2)
    assert len(hits) == 2
    assert set(hits[0]) == {"doc", "title", "score", "snippet"}
    assert hits[0]["title"] == "Refund Policy"
    assert hits[0]["score"] >= hits[1]["score"] > 0
    assert "refundable" in hits[0]["snippet"]
    assert len(search_documents("the policy", limit=10)) <= 10


def test_snippet_is_the_sentence_with_the_rarest_matching_terms() -> None:
    hits = search_documents("How long do we keep chat transcripts?")
    assert hits[0]["snippet"].startswith("Chat transcripts and agent answers")
    assert "90 days" in hits[0]["snippet"]


def test_search_without_matches_is_empty() -> None:
    assert search_documents("xylophone zebra quasar") == []


@pytest.mark.parametrize(
    ("query", "limit", "message"),
    [
        ("", 3, "query is empty"),
        ("   ", 3, "query is empty"),
        ("what is the", 3, "no searchable words"),
        ("refund", 0, "limit must be"),
        ("refund", 11, "limit must be"),
        ("refund", "3", "limit must be"),
        ("refund", True, "limit must be"),
    ],
)
def test_search_refuses_bad_input(query: str, limit: object, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        search_documents(query, limit)  # type: ignore[arg-type]


def test_read_document_returns_title_and_text() -> None:
    doc = read_document("refund-policy")
    assert doc["title"] == "Refund Policy"
    assert doc["doc"] == "refund-policy"
    assert "within 30 days" in doc["text"]
    assert doc["truncated"] is (doc["chars"] > MAX_READ_CHARS)
    assert read_document("refund-policy.md")["doc"] == "refund-policy"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("no-such-doc", "unknown document 'no-such-doc'; available: api-rate-limits"),
        ("../../pyproject", "unknown document"),
        ("", "doc is empty"),
    ],
)
def test_read_document_refuses_unknown_documents(doc: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        read_document(doc)


@pytest.mark.usefixtures("fresh_caches")
def test_read_document_truncates_long_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs").mkdir()
    body = "Padding words for a very long document. " * 200
    (tmp_path / "docs" / "long.md").write_text(f"# Long One\n\n{body}", encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    doc = read_document("long")
    assert doc["title"] == "Long One"
    assert doc["truncated"] is True
    assert len(doc["text"]) == MAX_READ_CHARS
    assert doc["chars"] == len(body.strip())


def test_bm25_prefers_the_document_where_a_rare_term_is_frequent() -> None:
    index = DocumentIndex.from_directory(resource_path("docs"))
    hits = index.search("chargeback")
    assert [h.doc for h in hits] == ["refund-policy"]


def test_tokenize_drops_stopwords_and_folds_simple_plurals() -> None:
    assert tokenize("What are the Refunds?") == ["refund"]
    assert tokenize("refundable policies process") == ["refund", "policy", "process"]
    assert tokenize("tool_completed p99_ms") == ["tool_completed", "p99_ms"]


def test_sentences_join_wrapped_lines_and_drop_markup() -> None:
    text = (
        "# Title\n\nOne sentence that is\nwrapped here. Second one.\n\n"
        "1. **Bold** `code` item\n- Bullet\n\n| Chats | 90 days |\n|---|---|\n"
    )
    assert sentences(text) == [
        "One sentence that is wrapped here.",
        "Second one.",
        "Bold code item",
        "Bullet",
        "Chats | 90 days",
    ]


def test_tools_are_described() -> None:
    by_name = {tool.name: tool for tool in tools()}
    assert set(by_name) == {"search_documents", "read_document"}
    assert set(by_name["search_documents"].parameters) == {"query", "limit"}
    assert set(by_name["read_document"].parameters) == {"doc"}
    assert all(tool.description for tool in by_name.values())
