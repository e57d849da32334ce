"""The websockets internals the runtime's batched writes rely on are still there.

``runtime.websockets_adapter`` is the only code that touches them. If a websockets release
renames one, the runtime falls back to one ``send`` per frame (correct, slower) and this
test fails, naming what disappeared, so the pin or the adapter is fixed before a release.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import websockets
from websockets.asyncio.connection import Connection

from runtime.client import AgentClient
from runtime.server import RuntimeServer
from runtime.websockets_adapter import (
    METHOD_CHECK_INTERNALS,
    BatchWriter,
    batch_writer,
    missing_internals,
)
from tests.conftest import metric_value, seconds


@contextlib.asynccontextmanager
async def server_side(runtime: RuntimeServer) -> AsyncIterator[tuple[AgentClient, Connection]]:
    """A client connection, and the runtime's end of it."""
    client = await AgentClient.connect(runtime.url, runtime.issue_token("alice"))
    try:
        (route,) = runtime.manager._users.values()
        (sub,) = route.connections
        assert isinstance(sub.transport, Connection)
        yield client, sub.transport
    finally:
        await client.close()


async def test_a_real_server_connection_has_every_internal_the_batch_writer_uses(
    runtime: RuntimeServer,
) -> None:
    async with server_side(runtime) as (client, connection):
        missing = missing_internals(connection)
        assert not missing, (
            f"websockets {websockets.__version__} has no {', '.join(missing)} on its server "
            "connection: the runtime now writes one frame per send() (slower). Update "
            "runtime/websockets_adapter.py for this release, or pin websockets below it"
        )
        assert isinstance(batch_writer(connection), BatchWriter)
        # And the batched path is the one in use: several frames went out in fewer writes.
        events = await client.run("batched", "load", options={"steps": 50, "pace": 0})
        await client.wait_until(lambda: len(client.events) >= len(events), seconds(5))
        frames = metric_value(runtime, "aem_frames_sent_total", endpoint="ws")
        writes = metric_value(runtime, "aem_socket_writes_total", endpoint="ws")
        assert frames >= len(events) and writes < frames


def test_something_that_is_not_a_websockets_connection_gets_no_batch_writer() -> None:
    class Plain:
        async def send(self, message: bytes, *, text: bool | None = None) -> None: ...

    assert batch_writer(Plain()) is None
    assert missing_internals(Plain()) == ["protocol", "transport", "paused"]


async def test_the_server_protocol_has_every_internal_the_method_check_uses(
    runtime: RuntimeServer,
) -> None:
    async with server_side(runtime) as (_, connection):
        missing = missing_internals(connection.protocol, METHOD_CHECK_INTERNALS)
        assert not missing, (
            f"websockets {websockets.__version__}'s ServerProtocol has no {', '.join(missing)}: "
            "a POST with a body is dropped unanswered again instead of getting 405. Update "
            "MethodCheckingConnection in runtime/websockets_adapter.py for this release"
        )
