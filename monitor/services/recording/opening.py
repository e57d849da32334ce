"""``open_any``: a recording file, a JSON Lines file or a HAR file, opened the same way.

A SQLite recording opens directly. A HAR (by its content, ``har.read_har``) has its received
WebSocket messages imported (``har``); anything else is read as JSON Lines (``jsonl``), into
a new recording — in ``import_dir`` to keep it (the app's recordings folder: it then shows up
in the list of recordings), or in a temporary folder removed on ``close()``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from monitor.model.recording.format import RecordingError

from .database import is_sqlite_file
from .har import import_har, read_har
from .jsonl import ImportReport, import_jsonl
from .reader import Recording
from .storage import SUFFIX


@dataclass(slots=True)
class OpenedRecording:
    """An open recording and, for an import, what the import reported."""

    recording: Recording
    imported: ImportReport | None = None
    _temporary: Path | None = field(default=None, repr=False)

    @property
    def problems(self) -> list[str]:
        """Everything wrong with the input, for the user (bad lines, damage)."""
        found = self.imported.problems() if self.imported is not None else []
        return found + self.recording.problems

    def close(self) -> None:
        self.recording.close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)


def import_path(folder: Path, source: Path) -> Path:
    """A new recording name in ``folder`` for an import of ``source``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"import-{source.stem}-{stamp}{SUFFIX}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"import-{source.stem}-{stamp}-{n}{SUFFIX}"
    return path


def open_any(path: Path, *, import_dir: Path | None = None) -> OpenedRecording:
    """Open ``path`` as a recording, or import it (HAR or JSON Lines) and open the result.

    Raises ``RecordingError`` (with a message for the user) when nothing can be opened:
    no such file, a newer format, or a file with no readable frame at all.
    """
    if not path.is_file():
        raise RecordingError(f"{path}: no such file")
    if is_sqlite_file(path):
        return OpenedRecording(Recording.open(path))
    temporary = None if import_dir is not None else Path(tempfile.mkdtemp(prefix="aem-import-"))
    folder = import_dir if import_dir is not None else temporary
    assert folder is not None
    destination = import_path(folder, path)
    try:
        har = read_har(path)
        if har is not None:
            report = import_har(path, destination, har)
        else:
            report = import_jsonl(path, destination)
        if not report.frames:
            problems = report.problems()[:3]
            why = f": {'; '.join(problems)}" if problems else ""
            what = (
                "a HAR file without received WebSocket messages"
                if har is not None
                else "not a recording, and no JSON Lines frames"
                f"{' in it' if report.lines else ' — it is empty'}"
            )
            raise RecordingError(f"{path} has no frames to open ({what}){why}")
        return OpenedRecording(Recording.open(destination), report, temporary)
    except BaseException:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
