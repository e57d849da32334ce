"""Every ``code`` an ``error`` frame of wire protocol v1 can carry, each with what it means.

The codes are stable: clients branch on them (the message is for people and may change).
``docs/protocol.md`` (*Error codes*) documents each with what its ``ref`` holds, and
``tests/test_protocol_doc.py`` keeps that table, this enumeration and the codes the runtime
actually sends in step. Nothing here does I/O.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` frame."""

    # the frame itself (runtime.protocol's codec, ProtocolError)
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    # the connection (runtime.server)
    BINARY_NOT_SUPPORTED = "binary_not_supported"
    READ_ONLY = "read_only"
    # what a valid message asked for (runtime.server)
    UNKNOWN_AGENT = "unknown_agent"
    UNKNOWN_RUN = "unknown_run"
    TOO_MANY_RUNS = "too_many_runs"
    FAULTS_DISABLED = "faults_disabled"
    BROKER_UNAVAILABLE = "broker_unavailable"
    # resume (runtime.connections)
    REPLAY_GAP = "replay_gap"
    RESUME_AHEAD = "resume_ahead"


#: each code with a one-line description of when it is sent
ERROR_CODES: dict[ErrorCode, str] = {
    ErrorCode.INVALID_JSON: "The frame is not valid JSON.",
    ErrorCode.NOT_AN_OBJECT: "The frame is JSON, but not an object.",
    ErrorCode.UNKNOWN_TYPE: "The frame's 'type' names no message (or event) of the protocol.",
    ErrorCode.MISSING_FIELD: "A required field is missing, or the frame has no string 'type'.",
    ErrorCode.INVALID_FIELD: "A field has the wrong type or an out-of-range value.",
    ErrorCode.BINARY_NOT_SUPPORTED: "A binary frame: the protocol is JSON text frames only.",
    ErrorCode.READ_ONLY: "Anything but resume or ping sent on the /monitor stream.",
    ErrorCode.UNKNOWN_AGENT: "user_message names an agent this runtime does not have.",
    ErrorCode.UNKNOWN_RUN: "cancel of a run that is not the user's or is no longer running.",
    ErrorCode.TOO_MANY_RUNS: "user_message while the user has the most runs in progress allowed.",
    ErrorCode.FAULTS_DISABLED: "user_message with options.faults on a runtime that refuses them.",
    ErrorCode.BROKER_UNAVAILABLE: (
        "user_message while a cluster node cannot reach its Redis: no run can be started."
    ),
    ErrorCode.REPLAY_GAP: "A resume asked for events no longer in the replay buffer.",
    ErrorCode.RESUME_AHEAD: "A resume's after_seq is beyond the stream's last seq (a restart).",
}
