"""``ChatConnection``: the chat panel's ``/ws`` connection, on a thread of its own.

Like the ingest and the demo traffic it runs a plain asyncio loop on its own thread, so
network I/O and JSON decoding never wait on the GUI. The GUI hands it
messages (``send``, ``cancel``) and drains what happened with ``poll()`` on its refresh
timer: the events of the conversation's thread, refusals, and connection changes.

Messages are sent one at a time, each after the previous one's run has started or been
refused (``AgentClient.start_run``): an error frame then always belongs to the message
that was just sent, and ``ChatConversation`` can match runs to messages in order.

A lost connection is re-opened by the reconnect loop (``runtime.reconnect``) and resumed
where the last one ended (``ResumeCursor``; from the start of a restarted runtime), so
the events of runs still going are not lost; a refused token (HTTP 401/403) ends the
connection for good, since the same token would be refused again.

``chat_target(workspace)`` says where a workspace's chat goes: its embedded runtime (which
mints a token for any user), a remote runtime (a user token must be typed in: a remote
workspace only holds a monitor token), or nowhere (a replayed recording).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from websockets.exceptions import ConnectionClosed

from monitor.model.chat import Refused
from monitor.model.workspace_kind import WatchedWorkspace, WorkspaceKind
from runtime.client import AgentClient
from runtime.protocol import Cancel, Event
from runtime.reconnect import Reconnector, RetryNow, describe_failure
from runtime.streams import AckKind, Backoff, ConnectionState, ResumeCursor

from .capture import CLOSE_TIMEOUT, OPEN_TIMEOUT, TokenSource, base_url
from .loop_thread import LoopThread

log = logging.getLogger(__name__)

#: how long a message may wait for its run's agent_started before it counts as lost
START_TIMEOUT = 10.0
#: the reader wakes at least this often (s) to check the connection
PUMP_WAKE = 1.0


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The chat's connection changed state; ``detail`` says who we are or what went wrong."""

    state: ConnectionState
    detail: str = ""


#: what ``ChatConnection.poll`` returns: this thread's events, refusals, connection changes
ChatUpdate = Event | Refused | ConnectionChanged


@dataclass(frozen=True, slots=True)
class _Send:
    message_id: int
    text: str
    agent: str | None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Cancel:
    run_id: str


class ChatConnection(LoopThread):
    """One user's ``/ws`` connection at ``url`` for the conversation ``thread_id``."""

    def __init__(
        self,
        url: str,
        token: TokenSource,
        thread_id: str,
        *,
        name: str = "chat",
        backoff: Backoff | None = None,
        open_timeout: float = OPEN_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        """``token`` is a user token, or a function returning a fresh one per connection."""
        super().__init__(name)
        self.url = base_url(url)
        self.thread_id = thread_id
        self._token = token
        self.open_timeout = open_timeout
        self.start_timeout = start_timeout
        # Both are created here, off the loop: since Python 3.10 neither binds to a loop
        # before first use, and ``send`` may queue a message before ``_run`` begins.
        self._outbox: asyncio.Queue[_Send | _Cancel] = asyncio.Queue()
        self._settled = asyncio.Event()  # connected, or failed for good
        self._updates: collections.deque[ChatUpdate] = collections.deque()
        self._client: AgentClient | None = None
        self._failure = ""  # why the connection ended for good
        #: where this user's stream continues: a reconnect resumes after what we received
        self._cursor = ResumeCursor()
        self._reconnect = Reconnector(
            f"chat connection to {self.url}",
            backoff,
            on_state=self._on_state,
            auth_hint="the runtime refused this token",
            retry_unexpected=True,  # a surprise must not end the chat: say it, retry
        )

    # --- called from the GUI thread ------------------------------------------------------

    def send(
        self,
        message_id: int,
        text: str,
        agent: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue a message; its run's events (or a ``Refused``) come out of ``poll``."""
        self._command(_Send(message_id, text, agent, dict(options or {})))

    def cancel(self, run_id: str) -> None:
        """Ask the runtime to cancel a run (it still ends with ``agent_completed``)."""
        self._command(_Cancel(run_id))

    def poll(self) -> list[ChatUpdate]:
        """Everything that happened since the last ``poll``, in order."""
        updates = []
        while self._updates:
            updates.append(self._updates.popleft())
        return updates

    def _command(self, command: _Send | _Cancel) -> None:
        loop = self._loop
        if loop is None or not self.running:
            raise RuntimeError("the chat connection is not running: start() it first")
        loop.call_soon_threadsafe(self._outbox.put_nowait, command)

    # --- the connection's thread ---------------------------------------------------------

    def _post(self, update: ChatUpdate) -> None:
        self._updates.append(update)  # deque appends are thread-safe

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._stay_connected(), name=f"{self.name}-connection")
            tasks.create_task(self._send_messages(), name=f"{self.name}-sender")

    def _current_token(self) -> str:
        return self._token() if callable(self._token) else self._token

    async def _stay_connected(self) -> None:
        reason = await self._reconnect.run(self._attempt)
        # For good: a refused token (the same one would be refused again).
        self._failure = reason
        self._settled.set()

    def _on_state(self, state: ConnectionState, detail: str) -> None:
        self._post(ConnectionChanged(state, detail))

    async def _attempt(self) -> str:
        """One connection: open it (resuming where the last one ended), hand its events of
        our thread to the GUI until it closes; returns why it closed."""
        try:
            token = self._current_token()
        except RuntimeError as exc:  # no token: e.g. the embedded runtime has stopped
            raise ConnectionError(str(exc)) from exc
        client = await AgentClient.connect(
            self.url,
            token,
            cursor=self._cursor,
            ack_timeout=self.open_timeout,
            open_timeout=self.open_timeout,
            close_timeout=CLOSE_TIMEOUT,
        )
        verdict = client.ack_verdict
        assert client.ack is not None and verdict is not None  # connect() waits for the ack
        if verdict.kind is AckKind.RESTARTED:
            # A new runtime numbers from 1 again: resuming at our old count would skip its
            # first events (a run started since), so ask for its stream from the start.
            log.warning("chat connection to %s: runtime restarted: %s", self.url, verdict.detail)
            await client.close()
            raise RetryNow
        self._client = client
        self._settled.set()
        self._reconnect.connected(f"as {client.ack.user_id}")
        try:
            while client.closed is None:
                with contextlib.suppress(TimeoutError):
                    await client.wait_until(
                        lambda: bool(client.events) or client.closed is not None, PUMP_WAKE
                    )
                self._forward(client)
            return describe_failure(client.closed)
        finally:
            self._client = None
            self._settled.clear()
            with contextlib.suppress(ConnectionClosed, OSError):
                await client.close()

    def _forward(self, client: AgentClient) -> None:
        events, client.events = client.events, []
        for event in events:
            if event.thread_id == self.thread_id:
                self._post(event)
        # the client keeps a latency per event; a chat left open for hours must not grow
        client.latencies_ms.clear()

    async def _send_messages(self) -> None:
        while True:
            command = await self._outbox.get()
            client = await self._connected_client()
            if isinstance(command, _Cancel):
                if client is not None:
                    with contextlib.suppress(ConnectionClosed):
                        await client.send(Cancel(command.run_id))
                continue
            if client is None:
                reason = self._failure or f"not connected to {self.url}"
                self._post(Refused(command.message_id, reason))
                continue
            refusal = await self._start(client, command)
            if refusal:
                self._post(Refused(command.message_id, refusal))

    async def _start(self, client: AgentClient, command: _Send) -> str:
        """Send one message and wait for its run to start; returns why not ("" if it did)."""
        try:
            await client.start_run(
                command.text,
                command.agent,
                thread_id=self.thread_id,
                options=command.options,
                timeout=self.start_timeout,
            )
        except TimeoutError:
            return f"the runtime did not start a run within {self.start_timeout:g} s"
        except RuntimeError as exc:  # an error frame: "run refused: code: message"
            return str(exc).removeprefix("run refused: ")
        except (ConnectionClosed, OSError) as exc:
            return f"not sent: {describe_failure(exc)}"
        except Exception as exc:  # refuse this message, keep the chat going
            log.exception("chat message to %s could not be sent", self.url)
            return f"not sent: {exc!r}"
        return ""

    async def _connected_client(self) -> AgentClient | None:
        """The open connection, waiting up to ``open_timeout`` for one; None if it failed."""
        if not self._failure:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), self.open_timeout)
        return None if self._failure else self._client


# --- where a workspace's chat goes -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """Where the chat sends messages, and how it gets a user token.

    ``mint(user)`` makes a token for any user when we hold the runtime's secret (the
    embedded runtime); otherwise (None) the user must supply a token, which is kept in
    memory only.
    """

    url: str
    kind: Literal["embedded", "remote"]
    mint: Callable[[str], str] | None = None

    @property
    def needs_token(self) -> bool:
        return self.mint is None


def chat_target(workspace: WatchedWorkspace) -> ChatTarget | None:
    """The chat target of a monitor workspace; None when there is nothing to chat with (a
    replayed recording)."""
    if workspace.kind == WorkspaceKind.EMBEDDED and workspace.runtime is not None:
        return ChatTarget(workspace.runtime.url, "embedded", workspace.runtime.issue_token)
    if workspace.kind == WorkspaceKind.REMOTE:
        return ChatTarget(base_url(workspace.target), "remote")
    return None


def token_subject(token: str) -> str | None:
    """The user a token is for (its ``sub`` claim), read without verifying it — only the
    runtime can verify; this only tells the user who they will chat as. None if it is
    not a JWT."""
    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and sub else None
