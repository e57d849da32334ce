"""EmbeddedRuntime: a runtime on its own thread, reachable over real sockets."""

from __future__ import annotations

import pytest

from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime
from tests.conftest import seconds, test_config


async def test_embedded_runtime_serves_and_stops() -> None:
    with EmbeddedRuntime(test_config()) as embedded:
        assert embedded.running
        client = await AgentClient.connect(embedded.url, embedded.issue_token("alice"))
        events = await client.run("2+2", "calculator", timeout=seconds(30))
        assert events[-1].data["status"] == "completed"
        assert client.close_findings() == []
        await client.close()
    assert not embedded.running


def test_start_failure_is_reported() -> None:
    with EmbeddedRuntime(test_config()) as first:
        port = first.server.port
        clash = EmbeddedRuntime(test_config(port=port))
        with pytest.raises(RuntimeError, match="failed to start"):
            clash.start()
