"""Fixtures for the demo agent and tool tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.demo_tools import datasets, documents


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """Forget the cached knowledge base and datasets (for tests that point at other files)."""
    caches = (documents.knowledge_base, datasets._catalog, datasets._load)
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()
