"""``Workspace``: an embedded runtime with demo traffic shows live activity within 2 s (the
issue's promise to a new user); a remote one only ingests; stopping leaves no thread."""

from __future__ import annotations

import threading
import time

from monitor.services.workspace import Workspace
from runtime.auth import Role
from runtime.streams import ConnectionState
from tests.conftest import seconds
from tests.monitor.model.conftest import RuntimeStarter, run_on, wait_until


def test_embedded_shows_live_activity_within_two_seconds() -> None:
    threads_before = set(threading.enumerate())
    began = time.monotonic()
    workspace = Workspace.embedded()
    try:
        store = workspace.session.store
        # The promise covers starting the runtime too, so the clock started before it.
        wait_until(lambda: store.total > 0, 2 - (time.monotonic() - began), "a first event")
        assert time.monotonic() - began < seconds(2)
        assert workspace.kind == "embedded"
        assert workspace.runtime is not None
        assert workspace.target == workspace.runtime.url
        assert workspace.secret == workspace.runtime.config.secret
        assert workspace.secret and len(workspace.secret) >= 32
        assert workspace.runtime.config.allow_client_faults
        assert workspace.session.status.state is ConnectionState.CONNECTED
        assert workspace.demo is not None and workspace.demo.running
    finally:
        workspace.stop()
    assert not workspace.ingest.running
    assert workspace.runtime is not None and not workspace.runtime.running
    assert set(threading.enumerate()) <= threads_before


def test_embedded_without_demo_is_quiet_until_someone_talks() -> None:
    with Workspace.embedded(demo=False) as workspace:
        assert workspace.demo is None
        assert workspace.runtime is not None
        wait_until(
            lambda: workspace.session.status.state is ConnectionState.CONNECTED, 5, "connected"
        )
        assert workspace.session.store.total == 0
        events = run_on(workspace.runtime, "2+2", "calculator", options={"pace": 0})
        wait_until(lambda: workspace.session.store.total == len(events), 5, "the run")


def test_remote_only_ingests(start_runtime: RuntimeStarter) -> None:
    runtime = start_runtime()
    with Workspace.remote(runtime.url, runtime.issue_token("ops", Role.MONITOR)) as workspace:
        assert (workspace.kind, workspace.target) == ("remote", runtime.url)
        assert workspace.runtime is None and workspace.demo is None and workspace.secret is None
        wait_until(
            lambda: workspace.session.status.state is ConnectionState.CONNECTED, 5, "connected"
        )
        events = run_on(runtime, "2+2", "calculator")
        wait_until(lambda: workspace.session.store.total == len(events), 5, "the run")
    assert not workspace.ingest.running
    assert runtime.running  # not ours to stop
