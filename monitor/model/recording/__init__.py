"""The recording format and a replay's speeds: what a recording is, without reading one.

Recording, replay, import and export themselves (SQLite, files, threads) are
``monitor.services.recording``.
"""

from .format import FORMAT_VERSION, FutureFormatError, RecordingError, RecordingMeta
from .speed import MAX_SPEED, SPEEDS, parse_speed, speed_label

__all__ = [
    "FORMAT_VERSION",
    "MAX_SPEED",
    "SPEEDS",
    "FutureFormatError",
    "RecordingError",
    "RecordingMeta",
    "parse_speed",
    "speed_label",
]
