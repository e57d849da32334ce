"""``ResearcherAgent`` run end to end over the real knowledge base, checked on the wire."""

from __future__ import annotations

import pytest

from runtime.agents.researcher import (
    DEFAULT_QUESTION,
    ResearcherAgent,
    query_variants,
    relevant_sentences,
)
from runtime.demo_tools.documents import read_document, tokenize
from runtime.faults import FaultConfig
from runtime.tools import ToolError

from .agent_harness import run_agent


def test_query_variants_differ_in_their_search_terms() -> None:
    variants = query_variants("What is the refund window for an annual subscription?")
    assert 2 <= len(variants) <= 3
    assert variants[0] == "What is the refund window for an annual subscription?"
    assert len({frozenset(tokenize(v)) for v in variants}) == len(variants)
    assert any("reimbursement" in v for v in variants)  # the synonym expansion


@pytest.mark.parametrize(
    ("question", "added"),
    [("prices?", "pricing"), ("our outages", "postmortem"), ("releases", "rollout")],
)
def test_synonyms_apply_to_every_form_of_a_word(question: str, added: str) -> None:
    assert added in query_variants(question)[1]


def test_relevant_sentences_prefer_specific_terms() -> None:
    text = read_document("refund-policy")["text"]
    picked = relevant_sentences(text, "refund window for an annual subscription", limit=1)
    assert picked == [
        "Annual subscriptions are refundable in full within 30 days of the purchase or "
        "renewal date."
    ]


@pytest.mark.parametrize(
    ("question", "doc", "fact"),
    [
        ("What is the refund window for an annual subscription?", "refund-policy", "30 days"),
        ("How long do we keep chat transcripts?", "data-retention-policy", "90 days"),
        ("Can we deploy on a Friday?", "deploy-checklist", "No deploys on Fridays"),
        ("What happens when a client hits the rate limit?", "api-rate-limits", "rate_limited"),
        ("How do I rotate the JWT signing secret?", "signing-key-rotation", "every 90 days"),
        ("What does the Team plan cost per seat?", "pricing-tiers", "$79"),
    ],
)
async def test_answers_from_the_right_document(question: str, doc: str, fact: str) -> None:
    run = await run_agent(ResearcherAgent(), question)
    run.assert_clean()
    assert run.answer.startswith("According to “")
    assert f"({doc}):" in run.answer.splitlines()[0]
    assert fact in run.answer
    searches = run.tool_calls("search_documents")
    assert 2 <= len(searches) <= 3
    assert searches[0].data["parameters"] == {"query": question, "limit": 3}
    assert [e.data["parameters"] for e in run.tool_calls("read_document")] == [{"doc": doc}]
    assert all(e.data["status"] == "success" for e in run.tool_results("search_documents"))


async def test_searches_run_in_parallel() -> None:
    run = await run_agent(
        ResearcherAgent(),
        "What is the refund window for an annual subscription?",
        faults=FaultConfig(tool_latency_ms=5),
    )
    run.assert_clean()
    assert len(run.tool_calls("search_documents")) == 3
    assert run.max_concurrent("search_documents") == 3


async def test_nothing_found_is_said_plainly() -> None:
    run = await run_agent(ResearcherAgent(), "xylophone zebra quasar")
    run.assert_clean(min_steps=2)
    assert run.answer.startswith("I found nothing in the knowledge base about")
    assert not run.tool_calls("read_document")


async def test_a_message_without_words_researches_the_default_question() -> None:
    run = await run_agent(ResearcherAgent(), "???")
    run.assert_clean()
    assert "no words I can search for" in run.answer
    assert DEFAULT_QUESTION in run.answer
    assert "(refund-policy):" in run.answer


async def test_all_searches_failing_is_reported() -> None:
    run = await run_agent(
        ResearcherAgent(), "refund for annual plans", faults=FaultConfig(tool_failure_rate=1.0)
    )
    run.assert_clean(min_steps=2)
    assert run.answer.startswith("I couldn't search the knowledge base")
    assert "injected failure in search_documents" in run.answer
    assert not run.tool_calls("read_document")


async def test_an_unreadable_best_document_falls_back_to_the_next() -> None:
    def read_all_but_refund_policy(doc: str) -> object:
        if doc == "refund-policy":
            raise ToolError("storage unavailable")
        return read_document(doc)

    run = await run_agent(
        ResearcherAgent(),
        "What is the refund window for an annual subscription?",
        replace_tools={"read_document": read_all_but_refund_policy},
    )
    run.assert_clean()
    reads = [e.data["status"] for e in run.tool_results("read_document")]
    assert reads == ["error", "success"]
    assert any("storage unavailable" in r for r in run.reasoning)
    assert "(refund-policy)" not in run.answer.splitlines()[0]


async def test_no_readable_document_answers_from_the_snippet() -> None:
    def unreadable(doc: str) -> object:
        raise ToolError("storage unavailable")

    run = await run_agent(
        ResearcherAgent(), "Can we deploy on a Friday?", replace_tools={"read_document": unreadable}
    )
    run.assert_clean()
    assert run.answer.startswith("From a search snippet of “Deploy Checklist” (deploy-checklist)")
    assert "No deploys on Fridays" in run.answer
