"""``AgentClient``: an asyncio client for a runtime's ``/ws`` or ``/monitor`` endpoint.

It keeps every frame it receives, checks the event stream with ``SequenceValidator`` as it
arrives, and lets callers wait for conditions (a run's completion, an error frame) with
timeouts. The load generator, the mission-critical suite and the monitor's chat panel use it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .protocol import (
    CLOCK_TOLERANCE,
    ClientMessage,
    ConnectionAck,
    Delivery,
    ErrorFrame,
    Event,
    EventType,
    Finding,
    NodeStatus,
    Pong,
    ProtocolError,
    Resume,
    RunLog,
    SequenceValidator,
    UserMessage,
    ValidatorConfig,
    decode_server_frame,
    encode_client_message,
)
from .protocol.endpoints import MONITOR_PATH, USER_PATH
from .streams import AckVerdict, ResumeCursor

T = TypeVar("T")


class RunNotFinished(TimeoutError):
    """A run did not send ``agent_completed`` in time."""


class MalformedFrameError(RuntimeError):
    """The runtime sent a frame that is not valid protocol v1 where an answer was due."""


class IsolationBreachError(RuntimeError):
    """A user's connection received another user's event."""


class AgentClient:
    """One connection to a runtime, with everything it received."""

    def __init__(
        self,
        ws: ClientConnection,
        validator: SequenceValidator | None = None,
        *,
        keep_events: bool = True,
    ) -> None:
        self.ws = ws
        self.validator = validator or SequenceValidator()
        #: keep every event in ``events`` (off for load generation: counts only)
        self.keep_events = keep_events
        self.received = 0
        self.ack: ConnectionAck | None = None
        self.events: list[Event] = []
        self.errors: list[ErrorFrame] = []
        self.deliveries: list[Delivery] = []
        #: ``node`` frames of a cluster's observer stream
        self.nodes: list[NodeStatus] = []
        #: ``log`` frames of the observer stream: warnings and errors logged during runs
        #: (kept with the events: not with ``keep_events`` off)
        self.logs: list[RunLog] = []
        self.findings: list[Finding] = []
        self.malformed: list[str] = []
        #: a malformed frame from the runtime ends every wait at once (``MalformedFrameError``)
        #: instead of at its timeout: for a test suite, where waiting cannot fix it
        self.strict = False
        #: how long ``start_run`` waits for the run's ``agent_started`` by default
        self.start_timeout = 10.0
        #: when the last frame of any kind arrived (wall clock): how long the runtime has
        #: been silent on this connection
        self.last_frame_at = time.time()
        #: the runtime's own word on whether a run is still executing (None: it cannot
        #: tell), where the caller can ask it: a wait for a run's agent_completed then ends
        #: as soon as the run has ended without one, instead of at a timeout
        self.run_active: Callable[[str], Awaitable[bool | None]] | None = None
        self.pongs = 0
        self.latencies_ms: list[float] = []
        self.closed: ConnectionClosed | None = None
        #: where this client is in its stream (``seq``, or ``monitor_seq`` on ``/monitor``):
        #: pass it to the next ``connect`` to resume after what this connection received
        self.cursor = ResumeCursor()
        #: the ``after_seq`` this connection resumed from at the handshake, if any
        self.resumed_after: int | None = None
        #: what the ``connection_ack`` meant: joined, resumed, or a restarted runtime
        self.ack_verdict: AckVerdict | None = None
        #: the endpoint connected to; on ``/ws`` every event must be of the ack's user
        self.endpoint = USER_PATH
        #: events of another user received on a ``/ws`` connection (an isolation breach)
        self.foreign = 0
        #: the first of them, described
        self.foreign_example: str | None = None
        self._changed = asyncio.Event()
        self._claimed_runs: set[str] = set()
        self._started: list[tuple[str, str]] = []  # (run_id, input) in arrival order
        self._completions: dict[str, Event] = {}
        self._reader: asyncio.Task[None] | None = None

    # --- connecting -------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str | None,
        *,
        endpoint: str = USER_PATH,
        after_seq: int | None = None,
        cursor: ResumeCursor | None = None,
        token_in_query: bool = False,
        validator: SequenceValidator | None = None,
        keep_events: bool = True,
        ack_timeout: float = 10.0,
        **connect_kwargs: Any,
    ) -> AgentClient:
        """Connect to ``url`` (``ws://host:port``) and wait for ``connection_ack``.

        ``after_seq`` resumes after that number; ``cursor`` (from an earlier connection,
        not with ``after_seq``) resumes where it says and goes on counting.
        """
        if cursor is not None and after_seq is not None:
            raise ValueError("give after_seq or a cursor, not both")
        if cursor is None:
            if endpoint == MONITOR_PATH:
                cursor = ResumeCursor(
                    after=after_seq, seq_name="monitor_seq", stream_name="observer stream"
                )
            else:
                cursor = ResumeCursor(after=after_seq)
        after_seq = cursor.request()
        query: dict[str, str] = {}
        headers: dict[str, str] = {}
        if token is not None:
            if token_in_query:
                query["token"] = token
            else:
                headers["Authorization"] = f"Bearer {token}"
        if after_seq is not None:
            query["after_seq"] = str(after_seq)
        full = url.rstrip("/") + endpoint + (f"?{urlencode(query)}" if query else "")
        connect_kwargs.setdefault("compression", None)
        connect_kwargs.setdefault("max_size", None)
        ws = await connect(full, additional_headers=headers, **connect_kwargs)
        client = cls(
            ws,
            validator
            or SequenceValidator(ValidatorConfig(late_join=True, clock_tolerance=CLOCK_TOLERANCE)),
            keep_events=keep_events,
        )
        client.resumed_after = after_seq
        client.cursor = cursor
        client.endpoint = endpoint
        client._reader = asyncio.get_running_loop().create_task(client._read())
        await client.wait_until(
            lambda: client.ack is not None or client.closed is not None, ack_timeout
        )
        if client.ack is None:
            raise ConnectionError(f"no connection_ack from {full}: {client.closed}")
        return client

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await self._reader

    async def wait_closed(self) -> ConnectionClosed | None:
        """Wait until the connection has closed (either side); returns how."""
        if self._reader is not None:
            await asyncio.shield(self._reader)
        return self.closed

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- receiving --------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while True:
                # bytes, not str: the codec parses UTF-8 JSON itself, a decode per frame less
                self._on_frame(await self.ws.recv(decode=False))
        except ConnectionClosed as exc:
            self.closed = exc
        finally:
            self._changed.set()

    def _on_frame(self, raw: str | bytes) -> None:
        now = self.last_frame_at = time.time()
        try:
            frame = decode_server_frame(raw)
        except ProtocolError as exc:
            self.malformed.append(f"{exc.code}: {exc.message}")
            self._changed.set()
            return
        if isinstance(frame, Event):
            self.received += 1
            # The validator tracks each user's stream apart, so it would take another
            # user's events as a second valid stream: the connection's owner is checked here.
            if (
                self.endpoint == USER_PATH
                and self.ack is not None
                and frame.user_id != self.ack.user_id
            ):
                self.foreign += 1
                if self.foreign_example is None:
                    self.foreign_example = (
                        f"seq {frame.seq} {frame.type} of user={frame.user_id} run={frame.run_id}"
                    )
            self.cursor.advance(frame.seq if frame.monitor_seq is None else frame.monitor_seq)
            if self.keep_events:
                self.events.append(frame)
            if frame.type is EventType.AGENT_STARTED:
                self._started.append((frame.run_id, frame.data["input"]))
            elif frame.type is EventType.AGENT_COMPLETED:
                self._completions.setdefault(frame.run_id, frame)
            self.latencies_ms.append((now - frame.timestamp) * 1000)
            found = self.validator.feed(frame, received_at=now)
            if found:
                self.findings.extend(found)
        elif isinstance(frame, Delivery):
            self.deliveries.append(frame)
            if frame.monitor_seq is not None:
                self.cursor.advance(frame.monitor_seq)
            self.findings.extend(self.validator.feed_delivery(frame, now))
        elif isinstance(frame, ConnectionAck):
            self.ack = frame
            instance = frame.extra.get("instance_id")
            self.ack_verdict = verdict = self.cursor.acknowledge(
                frame.last_seq, instance if isinstance(instance, str) else None, self.resumed_after
            )
            # A handshake resume replays the events after ``after_seq`` before live ones.
            self.validator.expect_next(frame.user_id, verdict.expect_next)
        elif isinstance(frame, ErrorFrame):
            self.errors.append(frame)
            self.cursor.refused(frame.code)
        elif isinstance(frame, Pong):
            self.pongs += 1
        elif isinstance(frame, NodeStatus):
            self.nodes.append(frame)
            if frame.monitor_seq is not None:
                self.cursor.advance(frame.monitor_seq)
            self.findings.extend(self.validator.feed_node(frame, now))
        elif isinstance(frame, RunLog):
            if self.keep_events:
                self.logs.append(frame)
            if frame.monitor_seq is not None:
                self.cursor.advance(frame.monitor_seq)
                self.findings.extend(self.validator.observe_monitor_seq(frame.monitor_seq, now))
        self._changed.set()

    async def wait_until(self, condition: Callable[[], T], timeout: float = 10.0) -> T:
        """Wait until ``condition()`` is truthy (re-checked on every frame); return it."""
        value = condition()
        if value:
            return value
        # One timeout for the whole wait: wait_for per frame made a task and a timer each
        # time, which cost as much as decoding the frame.
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                while True:
                    self._changed.clear()
                    await self._changed.wait()
                    value = condition()
                    if value:
                        return value
                    if self.strict:
                        self._raise_if_broken()
        except TimeoutError:
            if not deadline.expired():
                raise
            value = condition()
            if value:
                return value
            raise TimeoutError(f"condition not met within {timeout:g}s") from None

    def _raise_if_broken(self) -> None:
        """In ``strict`` mode: what no wait can mend ends the wait, named."""
        if self.malformed:
            raise MalformedFrameError(
                f"AEM018: the runtime sent a malformed frame: {self.malformed[0]}"
            )
        if self.foreign_example is not None:
            raise IsolationBreachError(
                f"a connection of {self.ack.user_id if self.ack else '?'} received "
                f"{self.foreign} event(s) of another user, first {self.foreign_example}: "
                "cross-delivery between users"
            )

    # --- sending ----------------------------------------------------------------------

    async def send(self, message: ClientMessage) -> None:
        await self.ws.send(encode_client_message(message), text=True)

    async def resume(self, after_seq: int) -> None:
        """Ask for the buffered events after ``after_seq``; the stream is checked from there."""
        if self.ack is not None:
            self.validator.expect_next(self.ack.user_id, after_seq + 1)
        await self.send(Resume(after_seq))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def start_run(
        self,
        text: str,
        agent: str | None = None,
        *,
        thread_id: str | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Send a ``user_message`` and return the run id of the run it started (waiting
        ``timeout``, default ``start_timeout``, for its ``agent_started``)."""
        timeout = self.start_timeout if timeout is None else timeout
        errors_before = len(self.errors)
        malformed_before = len(self.malformed)
        await self.send(UserMessage(text, thread_id, agent, dict(options or {})))

        def started() -> str | None:
            for run_id, user_input in self._started:
                if run_id not in self._claimed_runs and user_input == text:
                    return run_id
            if len(self.errors) > errors_before:
                error = self.errors[-1]
                raise RuntimeError(f"run refused: {error.code}: {error.message}")
            if len(self.malformed) > malformed_before:
                # what should have been agent_started could not be read: waiting longer
                # only hides the cause
                raise MalformedFrameError(
                    f"AEM018: the runtime answered with a malformed frame instead of "
                    f"agent_started: {self.malformed[malformed_before]}"
                )
            return None

        run_id = await self.wait_until(started, timeout)
        assert run_id is not None  # wait_until returns only a truthy value
        self._claimed_runs.add(run_id)
        return run_id

    async def wait_run(self, run_id: str, timeout: float = 30.0) -> list[Event]:
        """Wait for ``run_id``'s ``agent_completed``; return the run's events in order."""
        try:
            await self.wait_until(lambda: self.completion(run_id), timeout)
        except TimeoutError:
            types = [e.type.value for e in self.run_events(run_id)]
            raise RunNotFinished(
                f"run {run_id} sent no agent_completed within {timeout:g}s; got {types}"
            ) from None
        return self.run_events(run_id)

    async def run(
        self,
        text: str,
        agent: str | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> list[Event]:
        """Start a run and wait for it to finish; return its events."""
        run_id = await self.start_run(text, agent, options=options)
        return await self.wait_run(run_id, timeout)

    # --- reading what arrived ---------------------------------------------------------

    def run_events(self, run_id: str) -> list[Event]:
        return [e for e in self.events if e.run_id == run_id]

    def completion(self, run_id: str) -> Event | None:
        """The run's (first) ``agent_completed``, if it arrived."""
        return self._completions.get(run_id)

    @property
    def last_seq(self) -> int:
        return max((e.seq for e in self.events), default=self.ack.last_seq if self.ack else 0)

    def forget_old(self, keep: int) -> None:
        """Keep only the newest ``keep`` of each record: for connections open for hours.

        ``keep_events=False`` drops the events, but a connection still remembers every
        run's start and completion, latency, delivery, error and finding; a demo user
        chatting all day would grow without bound. Give its validator a matching
        ``max_runs`` too.
        """
        records: tuple[list[Any], ...] = (
            self.latencies_ms, self.findings, self.deliveries, self.errors, self.malformed,
            self._started,
        )  # fmt: skip
        for record in records:
            if len(record) > keep:
                del record[: len(record) - keep]
        for _ in range(len(self._completions) - keep):
            del self._completions[next(iter(self._completions))]
        if len(self._claimed_runs) > keep:
            started = {run_id for run_id, _ in self._started}
            self._claimed_runs &= started

    def close_findings(self) -> list[Finding]:
        """End-of-stream checks (unfinished runs, unrecovered gaps), added to ``findings``."""
        extra = self.validator.close(time.time())
        self.findings.extend(extra)
        return extra
