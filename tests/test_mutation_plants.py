"""Every planted regression of the mutation harness still applies to today's source.

The harness itself takes minutes (``python -m tests.mutation``); a plant whose code was
refactored away would only fail there. This catches it with the change that moved the code:
each plant's piece of source occurs exactly once, and the planted file still parses.
"""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT
from tests.mutation.plants import PLANTS, Plant


@pytest.mark.parametrize("plant", PLANTS, ids=lambda p: p.name)
def test_plant_applies_to_the_current_source(plant: Plant) -> None:
    text = (ROOT / plant.path).read_text(encoding="utf-8")
    count = text.count(plant.old)
    assert count == 1, (
        f"plant {plant.name!r} changes {plant.old.strip()[:70]!r}, which occurs {count} "
        f"times in {plant.path} (needs exactly once): update tests/mutation/plants.py to "
        "plant the same bug in the code as it is now"
    )
    ast.parse(text.replace(plant.old, plant.new), filename=plant.path)
