"""Where the bundled data files (``resources/``) are found."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_VAR = "AGENT_EVENT_MONITOR_RESOURCES"


def resources_dir() -> Path:
    """The ``resources/`` folder: ``$AGENT_EVENT_MONITOR_RESOURCES``, a bundled app's copy,
    or the one beside the source tree (editable installs and checkouts)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)  # set inside a PyInstaller bundle
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """A file under ``resources/``; raises ``FileNotFoundError`` naming where it looked."""
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"bundled resource {'/'.join(parts)} not found at {path}; set {ENV_VAR} to the "
            "resources folder"
        )
    return path
