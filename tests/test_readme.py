"""The README's documented tables match the code they describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.model.user_guide import HELP_TOPICS, headings
from runtime.faults import FaultConfig
from runtime.protocol.rules import RULES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_rule_table_matches_rules() -> None:
    """Every rule is in the table as the code defines it, with an example test that exists."""
    rows = [line for line in README.splitlines() if line.startswith("| AEM")]
    assert [row.split(" | ")[:4] for row in rows] == [
        [f"| {r.id}", r.name, r.severity, r.summary] for r in RULES
    ]
    tests = "".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py")
    )
    for row in rows:
        example = row.split(" | ")[4].strip(" |`")
        assert example.startswith("test_"), row
        if f"def {example}(" not in tests:
            pytest.fail(f"{row.split()[1]}: the README names {example}, but no test has that name")


def test_every_fault_knob_is_documented() -> None:
    for name in FaultConfig().to_dict():
        assert f"`{name}`" in README, name


def test_install_and_test_commands_match_ci() -> None:
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "pip install -e '.[test]'" in README and "install --quiet -e '.[test]'" in ci
    assert "\npython -m pytest\n" in README and "\npython -m pytest\n" in ci


def test_every_help_link_opens_an_existing_readme_section() -> None:
    sections = [h.text for h in headings(README)]
    for topic in HELP_TOPICS:
        assert sections.count(topic.heading) == 1, (
            f"Help › {topic.title} opens the README at '{topic.heading}': "
            "that heading must exist exactly once"
        )
