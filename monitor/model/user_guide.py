"""The user guide is the README: where it is, its sections, and the Help menu's topics.

Qt-free. The README ships beside ``resources/`` (the repository root in a checkout, the
bundle's root in a packaged app), so it is found with the same lookup as every other bundled
file and the Help menu works offline. Each Help topic names a README heading;
``tests/test_readme.py`` checks that every one exists, so a renamed section fails a test
instead of a menu entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from runtime.resources import ENV_VAR, resources_dir

README_NAME = "README.md"


@dataclass(frozen=True, slots=True)
class HelpTopic:
    """A Help menu entry: its text, and the README heading it opens at."""

    title: str
    heading: str
    shortcut: str = ""


#: the Help menu's links into the README, in menu order
HELP_TOPICS = (
    HelpTopic("User guide", "The monitor", shortcut="F1"),
    HelpTopic("Demo mode", "Demo mode"),
    HelpTopic("Recording and replay", "Recording and replay"),
    HelpTopic("Pre-deploy check", "Pre-deploy check"),
    HelpTopic("Sequence rules", "Sequence rules"),
    HelpTopic("Mission-critical suite", "Mission-critical suite"),
)


@dataclass(frozen=True, slots=True)
class Heading:
    """A Markdown ATX heading (``## Text``)."""

    level: int
    text: str

    @property
    def anchor(self) -> str:
        """The id GitHub gives the heading (``#recording-and-replay``), for links."""
        return heading_anchor(self.text)


def readme_path() -> Path:
    """Where the README is: beside the ``resources/`` folder (``resources_dir()``). It may
    not exist (a packaged app built without it); callers say so."""
    return resources_dir().parent / README_NAME


def missing_readme_message(path: Path) -> str:
    return (
        f"The user guide ({README_NAME}) was not found at {path}. It ships beside the "
        f"resources folder; set {ENV_VAR} to a resources folder that has it beside it."
    )


_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def headings(markdown: str) -> list[Heading]:
    """The ATX headings of ``markdown`` in order, skipping fenced code (where ``#`` starts a
    shell comment, not a heading)."""
    found: list[Heading] = []
    fence: str | None = None
    for line in markdown.splitlines():
        opening = _FENCE.match(line)
        if opening:
            marker = opening.group(1)
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
            continue
        if fence is None and (match := _ATX.match(line)):
            found.append(Heading(len(match.group(1)), match.group(2)))
    return found


def heading_anchor(text: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return slug.replace(" ", "-")
