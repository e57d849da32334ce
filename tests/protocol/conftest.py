"""Make the repository root importable when the project is not installed into the venv.

``pytest`` (the console script) does not put the working directory on ``sys.path`` and the
project has no ``pythonpath`` setting, so ``import runtime`` fails without this. It is a
no-op once the package is importable (installed, or ``pythonpath = ["."]`` configured).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("runtime") is None:  # pragma: no cover - environment dependent
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
