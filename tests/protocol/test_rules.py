"""The rule table: stable, well-formed ids, and every id the validator emits is in it."""

from __future__ import annotations

import inspect
import re

import pytest

from runtime.protocol import RULES, RULES_BY_ID, EventType, Finding, Rule, RuleId, Severity
from runtime.protocol import validator as validator_module
from runtime.protocol.rules import Scope, finding
from runtime.protocol.validator import RUN_TRANSITIONS, RunState

RULE_ID = re.compile(r"^AEM\d{3}$")


def emitted_rule_ids() -> set[str]:
    """Every rule the validator's source names (``RuleId.NAME``, or an ``AEM###`` literal)."""
    source = inspect.getsource(validator_module)
    named = {RuleId[name].value for name in re.findall(r"RuleId\.([A-Z0-9_]+)", source)}
    return named | set(re.findall(r"AEM\d{3}", source))


def test_each_rule_id_constant_is_named_after_its_rule() -> None:
    assert [(r.id, r.name) for r in RULES] == [
        (member.value, member.name.lower().replace("_", "-")) for member in RuleId
    ]


def test_rule_ids_are_unique_and_well_formed() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    assert all(RULE_ID.match(i) for i in ids), ids


def test_rule_ids_are_appended_in_order() -> None:
    # "Never renumber; add new rules at the end": the table reads AEM001, AEM002, ...
    assert [rule.id for rule in RULES] == [f"AEM{n:03d}" for n in range(1, len(RULES) + 1)]


def test_rule_names_are_unique_kebab_case() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names), names


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_every_rule_has_severity_scope_and_one_line_summary(rule: Rule) -> None:
    assert isinstance(rule.severity, Severity)
    assert isinstance(rule.scope, Scope)
    assert rule.summary.strip() == rule.summary and rule.summary
    assert "\n" not in rule.summary and rule.summary.endswith(".")


def test_rules_by_id_indexes_every_rule() -> None:
    assert list(RULES_BY_ID) == [rule.id for rule in RULES]
    assert all(RULES_BY_ID[rule.id] is rule for rule in RULES)


def test_every_rule_the_validator_emits_is_in_the_table() -> None:
    emitted = emitted_rule_ids()
    assert len(emitted) >= 15  # the grep found the validator's rules, not nothing
    assert emitted <= set(RULES_BY_ID), emitted - set(RULES_BY_ID)


def test_every_rule_is_emitted_somewhere() -> None:
    # AEM018 (malformed frame) belongs to whoever decodes frames; everything else is the
    # validator's job.
    assert set(RULES_BY_ID) - emitted_rule_ids() == {"AEM018"}


def test_transition_table_is_total_and_uses_known_rules() -> None:
    assert set(RUN_TRANSITIONS) == set(RunState)
    for state, row in RUN_TRANSITIONS.items():
        assert set(row) == set(EventType), state
        for next_state, rule_id in row.values():
            assert isinstance(next_state, RunState)
            assert rule_id is None or RULES_BY_ID[rule_id].scope is Scope.RUN


def test_severities_of_key_rules() -> None:
    # Info never alarms, stalls and timestamp drift warn, lost/duplicate/reordered events error.
    assert RULES_BY_ID["AEM017"].severity is Severity.INFO
    for warning in ("AEM008", "AEM012", "AEM013", "AEM020"):
        assert RULES_BY_ID[warning].severity is Severity.WARNING
    for error in ("AEM001", "AEM009", "AEM010", "AEM011", "AEM016", "AEM019", "AEM021"):
        assert RULES_BY_ID[error].severity is Severity.ERROR


def test_finding_takes_the_rules_severity() -> None:
    for rule in RULES:
        made = finding(rule.id, "msg", user_id="alice", run_id="r", seq=3, event_id="e", at=1.0)
        assert made.severity is rule.severity
        assert made.rule is rule
        assert (made.user_id, made.run_id, made.seq, made.event_id, made.at) == (
            "alice",
            "r",
            3,
            "e",
            1.0,
        )


def test_finding_for_an_unknown_rule_is_refused() -> None:
    with pytest.raises(KeyError):
        finding("AEM999", "no such rule")


def test_finding_str() -> None:
    located = finding("AEM009", "seq 2 of alice never arrived", user_id="alice", seq=2)
    assert str(located) == "AEM009 [error] seq 2 of alice never arrived (user=alice, seq=2)"
    bare = Finding("AEM019", Severity.ERROR, "observer frames missing")
    assert str(bare) == "AEM019 [error] observer frames missing"
