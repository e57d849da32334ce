"""A pytest plugin for the check's subprocess: writes the collected test ids as one line.

The suite's ``--progress-log`` reports each test as it finishes, but not what was collected,
so a progress bar would not know its total. Loaded with ``-p`` (``command.COLLECTION_PLUGIN``)
and given ``--collection-log PATH``, this writes
``{"$report_type": "CollectionFinish", "nodeids": [...]}`` once collection is done.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPORT_TYPE = "CollectionFinish"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--collection-log",
        metavar="PATH",
        help="write the collected test ids as one JSON line (for a progress bar)",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    path = session.config.getoption("collection_log", default=None)
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"$report_type": REPORT_TYPE, "nodeids": [item.nodeid for item in session.items]}
    target.write_text(json.dumps(record) + "\n", encoding="utf-8")
