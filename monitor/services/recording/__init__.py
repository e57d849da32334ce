"""Recording, replay, import and export: nothing the monitor receives is lost.

- ``Recorder`` (``recorder``): every frame (and note) of a session, as received, to a SQLite
  recording on a writer thread (WAL, batched commits), in the capture process that reads the
  socket; loud when the disk can't keep up, never dropping.
- ``Recording`` (``reader``): a recording opened read-only — streamed, paged by time,
  recovered page by page when damaged (``salvage``).
- ``Replay`` (``replay``): a recording through the same session and validator as live, on
  the recording's clock, at 1×/10×/100×/max, with pause and seek.
- ``jsonl``/``export``/``opening``: JSON Lines in and out, CSV out, any file opened alike.
- ``storage``: where recordings live, their disk use and retention.
- ``RecordingPager`` (``paging``): evicted events paged back in for the display.
- ``database``: a recording's SQLite file opened for writing.

The format itself and a replay's speeds are ``monitor.model.recording`` (re-exported here).
Nothing here imports Qt.
"""

from monitor.model.recording.format import (
    FORMAT_VERSION,
    FutureFormatError,
    RecordingError,
    RecordingMeta,
)
from monitor.model.recording.speed import MAX_SPEED, SPEEDS, parse_speed, speed_label

from .export import Selection, export_csv, export_findings_csv, export_jsonl
from .jsonl import ImportReport, import_jsonl
from .opening import OpenedRecording, open_any
from .paging import RecordingPager
from .reader import RecordedFrame, Recording
from .recorder import Recorder, RecorderState, RecorderStatus, SessionRecording
from .replay import Replay, ReplayWorkspace
from .storage import (
    RecordingFile,
    RetentionPolicy,
    RetentionReport,
    apply_retention,
    delete_recording,
    disk_use,
    list_recordings,
    recordings_dir,
    sample_recordings,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_SPEED",
    "SPEEDS",
    "FutureFormatError",
    "ImportReport",
    "OpenedRecording",
    "RecordedFrame",
    "Recorder",
    "RecorderState",
    "RecorderStatus",
    "Recording",
    "RecordingError",
    "RecordingFile",
    "RecordingMeta",
    "RecordingPager",
    "Replay",
    "ReplayWorkspace",
    "RetentionPolicy",
    "RetentionReport",
    "Selection",
    "SessionRecording",
    "apply_retention",
    "delete_recording",
    "disk_use",
    "export_csv",
    "export_findings_csv",
    "export_jsonl",
    "import_jsonl",
    "list_recordings",
    "open_any",
    "parse_speed",
    "recordings_dir",
    "sample_recordings",
    "speed_label",
]
