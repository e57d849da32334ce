"""A child process for the crash test: record a real runtime's traffic until killed.

``python -m tests.monitor.model.recording.record_until_killed DIR`` starts an embedded
runtime, watches it with ``MonitorIngest`` and records the session with a ``Recorder``
(the real ingest path), keeps load runs going, and prints ``committed N`` whenever the
recorder has committed more frames — so the test knows what must survive a SIGKILL.
"""

from __future__ import annotations

import sys
from pathlib import Path

from monitor.model.ingest import MonitorIngest
from monitor.model.recording import Recorder
from monitor.model.session import FROM_START_VALIDATOR, ObservationSession
from runtime.auth import Role
from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime
from tests.conftest import test_config


def main(directory: Path) -> None:
    runtime = EmbeddedRuntime(test_config()).start()
    session = ObservationSession(validator_config=FROM_START_VALIDATOR)
    recorder = Recorder.create(runtime.url, "embedded", late_join=False, directory=directory)
    recorder.start().attach(session)
    print(f"path {recorder.path}", flush=True)
    MonitorIngest(
        session, runtime.url, lambda: runtime.issue_token("ops", Role.MONITOR), from_start=True
    ).start()

    reported = 0
    while True:  # until killed
        runtime.call(_one_run(runtime), timeout=30)
        written = recorder.status().written
        if written > reported:
            reported = written
            print(f"committed {written}", flush=True)


async def _one_run(runtime: EmbeddedRuntime) -> None:
    async with await AgentClient.connect(runtime.url, runtime.issue_token("alice")) as c:
        await c.run("go", "load", options={"steps": 20, "tools": 2, "pace": 0})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
