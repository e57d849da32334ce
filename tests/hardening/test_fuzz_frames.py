"""Fuzzing the runtime's inbound frames (``tests/soak/fuzz.py``): 10,000 generated frames
over a real connection, each answered as the README documents, while another user's runs
stream on untouched. ``python -m tests.soak fuzz`` runs the same for as long as asked."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

from runtime.embedded import EmbeddedRuntime
from tests.conftest import seconds, test_config
from tests.soak.fuzz import (
    MAX_FRAME_BYTES,
    README,
    FrameFuzzer,
    documented_close_codes,
    documented_error_codes,
)

#: ``AEM_FUZZ_FRAMES`` / ``AEM_FUZZ_SEED`` reproduce or stretch a run
FRAMES = int(os.environ.get("AEM_FUZZ_FRAMES", "10000"))
SEED = int(os.environ.get("AEM_FUZZ_SEED", random.getrandbits(32)))


@pytest.fixture
def fuzz_runtime() -> Iterator[EmbeddedRuntime]:
    # Client faults off: a fuzzed message must not be able to break its own stream on purpose.
    config = test_config(max_frame_bytes=MAX_FRAME_BYTES, allow_client_faults=False)
    with EmbeddedRuntime(config) as runtime:
        yield runtime


@pytest.mark.slow
def test_fuzzed_frames_are_each_answered_as_documented(fuzz_runtime: EmbeddedRuntime) -> None:
    report = FrameFuzzer(fuzz_runtime, timeout=seconds(10)).run(FRAMES, SEED)

    assert report.violations == [], f"AEM_FUZZ_SEED={SEED}: {report.violations}"
    assert report.frames >= FRAMES
    # The fuzz reached every kind of answer, not only the codec's first refusal.
    reached = set(report.answers)
    assert reached >= {
        "invalid_json",
        "not_an_object",
        "missing_field",
        "invalid_field",
        "unknown_type",
        "binary_not_supported",
        "unknown_run",
        "pong",
        "close:1009",
    }, report.answers
    assert report.runs_started > 0  # valid messages got through and started runs
    assert report.bystander_runs > 0 and report.bystander_events > 0


def test_the_documented_answers_are_read_from_the_readme() -> None:
    readme = README.read_text()
    assert documented_error_codes(readme) >= {
        "invalid_json",
        "not_an_object",
        "unknown_type",
        "missing_field",
        "invalid_field",
        "binary_not_supported",
        "unknown_agent",
        "unknown_run",
        "too_many_runs",
        "faults_disabled",
        "read_only",
        "replay_gap",
    }
    assert documented_close_codes(readme) >= {1009, 4008}
