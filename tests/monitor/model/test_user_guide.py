"""The README as user guide (``monitor.model.user_guide``): found beside the resources, its
headings read the way Markdown means them."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.model.user_guide import (
    Heading,
    heading_anchor,
    headings,
    missing_readme_message,
    readme_path,
)
from runtime.resources import ENV_VAR

ROOT = Path(__file__).resolve().parents[3]


def test_the_readme_is_found_beside_the_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    assert readme_path() == ROOT / "README.md"
    assert readme_path().is_file()
    # a packaged app (or the override) keeps resources/ and README.md side by side
    monkeypatch.setenv(ENV_VAR, "/opt/aem/resources")
    assert readme_path() == Path("/opt/aem/README.md")
    assert ENV_VAR in missing_readme_message(readme_path())


def test_headings_skip_fenced_code() -> None:
    markdown = "\n".join(
        [
            "# Title",
            "text with a # in it",
            "## Install, run, test",
            "```bash",
            "# a shell comment, not a heading",
            "~~~",
            "```",
            "### Protocol (v1) ###",
            "####### seven is not a heading",
            "#not-a-heading",
        ]
    )
    assert headings(markdown) == [
        Heading(1, "Title"),
        Heading(2, "Install, run, test"),
        Heading(3, "Protocol (v1)"),
    ]


def test_anchors_are_githubs() -> None:
    assert heading_anchor("Recording and replay") == "recording-and-replay"
    assert heading_anchor("Install, run, test") == "install-run-test"
    assert heading_anchor("Protocol (v1)") == "protocol-v1"
    assert heading_anchor("Fault knobs (off by default)") == "fault-knobs-off-by-default"
    assert Heading(2, "Pre-deploy check").anchor == "pre-deploy-check"
