"""``ChatConnection`` against a real runtime over real WebSockets: a message's run comes back
event by event, refusals name the message, a refused token ends the connection, and events
of other conversations stay out. Also where a workspace's chat goes (``chat_target``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.model.chat import ChatConversation, MessageState, Refused, RunStatus
from monitor.model.session import ObservationSession
from monitor.model.workspace_kind import WorkspaceKind
from monitor.services.chat_client import (
    ChatConnection,
    ChatUpdate,
    ConnectionChanged,
    chat_target,
    token_subject,
)
from runtime.auth import Role, TokenAuthority
from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime
from runtime.protocol import Event, EventType
from runtime.streams import Backoff, ConnectionState
from tests.conftest import seconds
from tests.monitor.model.conftest import RuntimeStarter, StopAfter, run_on, wait_until


class Collected:
    """Everything a connection handed over so far (``poll`` drains, so tests keep it)."""

    def __init__(self, connection: ChatConnection) -> None:
        self.connection = connection
        self.updates: list[ChatUpdate] = []

    def pull(self) -> list[ChatUpdate]:
        self.updates += self.connection.poll()
        return self.updates

    def events(self) -> list[Event]:
        return [u for u in self.pull() if isinstance(u, Event)]

    def states(self) -> list[ConnectionState]:
        return [u.state for u in self.pull() if isinstance(u, ConnectionChanged)]


def connect(runtime: EmbeddedRuntime, stop_after: StopAfter, user: str = "alice") -> Collected:
    chat = ChatConversation()
    connection = ChatConnection(
        runtime.url, lambda: runtime.issue_token(user), chat.thread_id, name=f"chat-{user}"
    )
    return Collected(stop_after(connection.start()))


def test_a_message_comes_back_as_its_run_event_by_event(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    chat = connect(runtime, stop_after)
    wait_until(lambda: ConnectionState.CONNECTED in chat.states(), 10, "the chat to connect")
    chat.connection.send(1, "revenue by region", "data_analyst")
    wait_until(
        lambda: any(e.type is EventType.AGENT_COMPLETED for e in chat.events()), 20, "the run"
    )
    events = chat.events()
    assert events[0].type is EventType.AGENT_STARTED
    assert events[0].data["input"] == "revenue by region"
    assert {e.thread_id for e in events} == {chat.connection.thread_id}
    assert events[-1].data["status"] == "completed"
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    changes = [u for u in chat.updates if isinstance(u, ConnectionChanged)]
    assert changes[-1] == ConnectionChanged(ConnectionState.CONNECTED, "as alice")


def test_a_refused_message_is_named_and_the_next_one_still_runs(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    chat = connect(runtime, stop_after)
    chat.connection.send(7, "hello", "no_such_agent")
    chat.connection.send(8, "12 * 7", "calculator")
    refused = wait_until(
        lambda: [u for u in chat.pull() if isinstance(u, Refused)], 10, "the refusal"
    )
    assert refused[0].message_id == 7 and refused[0].reason.startswith("unknown_agent")
    wait_until(
        lambda: any(e.type is EventType.AGENT_COMPLETED for e in chat.events()), 20, "the run"
    )
    assert {e.data["input"] for e in chat.events() if e.type is EventType.AGENT_STARTED} == {
        "12 * 7"
    }


def test_the_conversation_follows_a_real_run_with_a_failing_tool(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    chat = connect(runtime, stop_after)
    conversation = ChatConversation(chat.connection.thread_id)
    message = conversation.add_message("revenue by region", "data_analyst", "alice", now=0.0)
    faults = {"faults": {"tool_failure_rate": 1.0}}
    chat.connection.send(message.id, message.text, message.agent, faults)

    def finished() -> bool:
        for update in chat.connection.poll():
            if not isinstance(update, ConnectionChanged):
                conversation.apply(update, now=1.0)
        return message.run is not None and message.run.finished

    wait_until(finished, 20, "the run to finish")
    assert message.state is MessageState.STARTED and message.run is not None
    tools = [s for s in message.run.steps if s.tool_name]
    assert tools and all(s.result == "injected failure in " + s.tool_name for s in tools)
    assert message.run.status is RunStatus.COMPLETED  # the agent copes and says so
    assert "couldn't analyse" in message.run.answer


def test_other_conversations_of_the_same_user_stay_out(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    chat = connect(runtime, stop_after, user="bob")
    wait_until(lambda: ConnectionState.CONNECTED in chat.states(), 10, "the chat to connect")
    run_on(runtime, "12 * 7", "calculator", user="bob")  # another window of bob's
    chat.connection.send(1, "5 km in miles", "calculator")
    wait_until(
        lambda: any(e.type is EventType.AGENT_COMPLETED for e in chat.events()), 20, "the run"
    )
    assert {e.data["input"] for e in chat.events() if e.type is EventType.AGENT_STARTED} == {
        "5 km in miles"
    }


def test_a_refused_token_ends_the_connection_and_refuses_messages(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    other = start_runtime()  # a token signed with another runtime's secret
    connection = stop_after(
        ChatConnection(runtime.url, other.issue_token("alice"), "th_chat_x").start()
    )
    chat = Collected(connection)
    wait_until(lambda: ConnectionState.FAILED in chat.states(), 10, "the refusal")
    failed = [u for u in chat.updates if isinstance(u, ConnectionChanged)][-1]
    assert "HTTP 401" in failed.detail
    connection.send(3, "hello")
    refused = wait_until(
        lambda: [u for u in chat.pull() if isinstance(u, Refused)], 10, "the message refused"
    )
    assert refused[0].message_id == 3 and "HTTP 401" in refused[0].reason


def test_a_message_to_an_unreachable_runtime_is_refused_and_reconnects_are_tried(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    url = runtime.url
    runtime.stop()
    connection = stop_after(ChatConnection(url, "token", "th_chat_x", open_timeout=0.5).start())
    chat = Collected(connection)
    connection.send(1, "hello")
    refused = wait_until(
        lambda: [u for u in chat.pull() if isinstance(u, Refused)], 10, "the message refused"
    )
    assert "not connected" in refused[0].reason
    assert ConnectionState.RECONNECTING in chat.states()


@dataclass
class FakeWorkspace:
    kind: WorkspaceKind
    target: str = "ws://staging:8765/monitor"
    runtime: EmbeddedRuntime | None = None
    secret: str | None = None
    session: ObservationSession = field(default_factory=ObservationSession)

    def stop(self) -> None:
        pass


def test_where_a_workspaces_chat_goes(start_runtime: RuntimeStarter) -> None:
    runtime = start_runtime()
    embedded = chat_target(FakeWorkspace(WorkspaceKind.EMBEDDED, runtime.url, runtime))
    assert embedded is not None and embedded.url == runtime.url and not embedded.needs_token
    assert embedded.mint is not None and token_subject(embedded.mint("carol")) == "carol"
    remote = chat_target(FakeWorkspace(WorkspaceKind.REMOTE))
    assert remote is not None and remote.needs_token and remote.url == "ws://staging:8765"
    assert chat_target(FakeWorkspace(WorkspaceKind.REPLAY)) is None


def test_the_user_a_token_is_for(start_runtime: RuntimeStarter) -> None:
    runtime = start_runtime()
    assert token_subject(runtime.issue_token("dana")) == "dana"
    assert token_subject(runtime.issue_token("ops", Role.MONITOR)) == "ops"
    assert token_subject("not a token") is None


def test_after_a_runtime_restart_the_chat_resumes_the_new_stream_from_its_start(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    """A restarted runtime numbers from 1 again: a chat that resumed after its old count would
    never get what the new one sent its user before the chat got back (here: a run of the
    chat's own conversation, started from another tab while the chat was reconnecting)."""
    old = start_runtime()
    conversation = ChatConversation()
    authority = TokenAuthority(old.config.secret)  # the restarted runtime keeps the secret
    connection = ChatConnection(
        old.url,
        lambda: authority.issue("alice"),
        conversation.thread_id,
        name="chat-alice",
        # a fixed, long pause before each reconnect: the other tab's run happens in it
        backoff=Backoff(2.0, 2.0, jitter="none"),
    )
    chat = Collected(stop_after(connection.start()))
    wait_until(lambda: ConnectionState.CONNECTED in chat.states(), 10, "the chat to connect")
    chat.connection.send(1, "before the restart", "load", {"steps": 30, "pace": 0})
    wait_until(
        lambda: any(e.type is EventType.AGENT_COMPLETED for e in chat.events()), 20, "the run"
    )
    before = len(chat.events())
    port, secret = old.server.port, old.config.secret
    old.stop()
    wait_until(lambda: chat.states()[-1] is ConnectionState.RECONNECTING, 10, "the chat to lose it")
    new = start_runtime(port=port, secret=secret)

    async def other_tab() -> list[Event]:
        async with await AgentClient.connect(new.url, new.issue_token("alice")) as client:
            run_id = await client.start_run(
                "from another tab",
                "load",
                thread_id=conversation.thread_id,
                options={"steps": 3, "pace": 0},
            )
            return await client.wait_run(run_id, seconds(10))

    missed = new.call(other_tab(), timeout=seconds(15))
    assert max(e.seq for e in missed) < before  # below the chat's old count
    wait_until(
        lambda: {e.event_id for e in missed} <= {e.event_id for e in chat.events()},
        15,
        "the chat to receive the run the restarted runtime sent while it was away",
    )
