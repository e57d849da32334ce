"""fuzz: hypothesis-generated inbound frames against a real runtime's ``/ws``.

Every generated frame goes to the runtime over a real WebSocket and is followed by a
``ping``: whatever arrives before the ``pong`` is the frame's answer. For each frame:

- the runtime answers, within ``timeout`` (no hang), and the connection stays open —
  except a frame over ``max_frame_bytes``, which must close its connection with 1009
  (those are sent on a throwaway connection of the same user);
- a frame the protocol codec rejects gets exactly one ``error`` with the codec's code (the
  server and ``runtime.protocol`` agree); a valid message gets at most one ``error``, with a
  code that message can have; a ``ping`` gets its own ``pong``;
- every ``error`` code is one the README documents, and every frame the runtime sends
  decodes as a protocol v1 frame.

Meanwhile another user (the bystander) runs the ``load`` agent back to back on its own
connection; every run must complete, its stream checked by ``SequenceValidator``. At the
end the runs the fuzz started are cancelled and must each end with ``agent_completed``;
the fuzz connection's own stream is checked by its validator too, and nothing may have
been logged at ERROR by the runtime or websockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime
from runtime.protocol import (
    Cancel,
    EventType,
    Ping,
    ProtocolError,
    Resume,
    UserMessage,
    decode_client_message,
)
from tests.benchmarks.results import BenchmarkResult, Figure, Target
from tests.conftest import test_config
from tests.protocol.strategies import NASTY_STRINGS, json_values

from .figures import none_allowed

README = Path(__file__).resolve().parents[2] / "README.md"
#: the fuzz runtime's frame limit: small, so frames just over it are cheap to generate
MAX_FRAME_BYTES = 4096
ANSWER_TIMEOUT = 10.0
#: frames per hypothesis example: hypothesis's own cost per example is several times that of
#: drawing one frame, so a list of them is one example
BATCH = 50
#: the error codes each valid message may still be answered with (the rest are for frames
#: the codec rejects)
ALLOWED_ERRORS: dict[type, frozenset[str]] = {
    Ping: frozenset(),
    Resume: frozenset({"replay_gap", "resume_ahead"}),
    Cancel: frozenset({"unknown_run"}),
    UserMessage: frozenset({"unknown_agent", "invalid_field", "too_many_runs", "faults_disabled"}),
}
AGENTS = ("load", "calculator", "researcher", "data_analyst", "supervisor")
#: the bystander's runs: small and paced, so it is busy during the whole fuzz
BYSTANDER_RUN = {"steps": 30, "tools": 2, "rate": 600, "pace": 0}

T = TypeVar("T")


# --- what the README documents ---------------------------------------------------------


def documented_error_codes(readme: str) -> frozenset[str]:
    """The codes in the README's *Error frames* table (first column, in backticks)."""
    section = readme.split("**Error frames**", 1)[1].split("**Close codes.**", 1)[0]
    codes: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            codes.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return frozenset(codes)


def documented_close_codes(readme: str) -> frozenset[int]:
    """The close codes the README's *Close codes.* paragraph names."""
    section = readme.split("**Close codes.**", 1)[1].split("\n\n", 1)[0]
    return frozenset(int(code) for code in re.findall(r"\b(1\d{3}|4\d{3})\b", section))


# --- inbound frames ---------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(NASTY_STRINGS),
)
#: a field value of any JSON type, containers one level deep: a recursive strategy costs
#: hypothesis about three times as much per value, and deep nesting is the codec's business
#: (``tests/protocol``) — it comes whole-frame below as ``json_values``
_any = (
    _scalars
    | st.lists(_scalars, max_size=3)
    | st.dictionaries(st.text(max_size=6), _scalars, max_size=3)
)
_text = st.text(max_size=40) | st.sampled_from(NASTY_STRINGS)
#: anything but a large integer: the load agent clamps ``steps`` and ``tools`` to 100,000,
#: and a few runs of 100,000 events would make the fuzz a flood test (the slow-reader and
#: monitor scenarios are those)
_not_large = st.integers(-(2**70), 40) | st.none() | st.booleans() | st.floats() | _text
_options = st.fixed_dictionaries(
    {},
    optional={
        "steps": _not_large | st.lists(_scalars, max_size=2),
        "tools": _not_large,
        "rate": st.floats(-10, 5000, allow_nan=False) | _any,
        "pace": st.floats(-1, 12, allow_nan=False) | _any,
        "faults": st.dictionaries(st.sampled_from(["tool_failure_rate", "chaos_drop", "x"]), _any)
        | _any,
    },
)
#: extra fields any message may carry (the server must ignore or refuse them, never crash)
_extras = {"extra": _any, "seq": _any, "user_id": _text}
#: each client message with its required fields mostly well-typed, so the fuzz reaches what
#: the server does with a parsed message, not only the codec's first refusal
_typed_messages = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("user_message"), "text": _text | _any},
        optional={
            "thread_id": st.sampled_from(["th_1", "", "../x", "a" * 300]) | _text | _any,
            "agent": st.sampled_from([*AGENTS, "", "skynet"]) | _any,
            "options": _options | _any,
            **_extras,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("resume"), "after_seq": st.integers(-3, 2**70) | _any},
        optional=_extras,
    ),
    st.fixed_dictionaries(
        {"type": st.just("cancel"), "run_id": st.sampled_from(["run_x", ""]) | _text | _any},
        optional=_extras,
    ),
    st.fixed_dictionaries({"type": st.just("ping")}, optional=_extras),
)
#: any object with a ``type``: known or not, fields present or not, of any type
_loose_messages = st.fixed_dictionaries(
    {"type": st.sampled_from(["user_message", "resume", "cancel", "ping"]) | _text | _any},
    optional={
        "text": _any,
        "agent": _any,
        "options": _any,
        "after_seq": _any,
        "run_id": _any,
    },
)
_messages = _typed_messages | _loose_messages


def _js(obj: object) -> str:
    # the stdlib, not orjson: it writes integers beyond 64 bits, which the server must read
    return json.dumps(obj, ensure_ascii=False)


def _mutate(frame: str, at: int, insert: str, drop: int) -> str:
    """``frame`` with ``drop`` characters at ``at`` replaced by ``insert`` (a damaged frame)."""
    at %= len(frame) + 1
    return frame[:at] + insert + frame[at + drop :]


def _sized(size: int) -> str:
    """A ``user_message`` text frame of ``size`` UTF-8 bytes (at least its fixed part)."""
    head, tail = '{"type":"user_message","agent":"load","options":{"pace":0},"text":"', '"}'
    return head + "x" * max(0, size - len(head) - len(tail)) + tail


def inbound_frames(limit: int = MAX_FRAME_BYTES) -> st.SearchStrategy[str | bytes]:
    """Text and binary frames a client might send: protocol-shaped messages with any field
    of any type, any JSON, any text, damaged messages, and frames around ``limit`` bytes."""
    return st.one_of(
        _typed_messages.map(_js),
        _typed_messages.map(_js),  # twice: what the server parses deepest is most of the fuzz
        _loose_messages.map(_js),
        json_values.map(_js),
        st.text(max_size=200) | st.sampled_from(NASTY_STRINGS),
        st.binary(max_size=200),
        st.builds(
            _mutate,
            _messages.map(_js),
            st.integers(0, 400),
            st.text(max_size=3) | st.sampled_from(['"', "{", "}", "\\", "\x00", ","]),
            st.integers(0, 3),
        ),
        st.integers(limit - 8, limit + 8).map(_sized),
    )


# --- the fuzzer -------------------------------------------------------------------------


class _ErrorLog(logging.Handler):
    """Collects ERROR records of the runtime and of websockets (a handler that crashed)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


@dataclass
class FuzzReport:
    """What the fuzz sent, what came back, and everything that broke a rule."""

    seed: int
    frames: int = 0
    oversize: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # error code / pong / close:NNNN
    runs_started: int = 0
    bystander_runs: int = 0
    bystander_events: int = 0
    bystander_p99_ms: float = float("nan")
    violations: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations


class FrameFuzzer:
    """Fuzzes one runtime; its clients live on the runtime's own event loop."""

    def __init__(self, runtime: EmbeddedRuntime, *, timeout: float = ANSWER_TIMEOUT) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self.limit = runtime.config.max_frame_bytes
        readme = README.read_text()
        self.documented = documented_error_codes(readme)
        self.close_codes = documented_close_codes(readme)
        self.user = f"fuzz-{uuid.uuid4().hex[:6]}"
        self.client: AgentClient | None = None
        self.bystander: AgentClient | None = None
        self._bystander_task: asyncio.Task[int] | None = None
        self._stop_bystander: asyncio.Event | None = None

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runtime.call(coro, timeout=self.timeout + 5)

    # --- one frame ----------------------------------------------------------------------

    def check(self, frame: str | bytes, report: FuzzReport) -> None:
        """Send one frame; raise ``AssertionError`` if its answer breaks a rule."""
        report.frames += 1
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
        if size > self.limit:
            report.oversize += 1
            code = self._call(self._oversize(frame))
            report.answers[f"close:{code}"] += 1
            assert code == 1009, f"a {size}-byte frame closed the connection with {code}"
            assert code in self.close_codes, f"close code {code} is not in the README"
            return
        expected = _expect(frame)
        errors, pongs = self._call(self._answer(frame, 2 if expected is Ping else 1))
        report.answers.update(e.code for e in errors)
        report.answers["pong"] += pongs
        codes = [e.code for e in errors]
        undocumented = [c for c in codes if c not in self.documented]
        assert not undocumented, f"error codes not in the README: {undocumented}"
        assert all(len(e.message) >= 10 for e in errors), f"unhelpful messages: {errors}"
        if isinstance(expected, str):
            assert codes == [expected], f"expected one {expected!r} error, got {codes}"
        else:
            allowed = ALLOWED_ERRORS[expected]
            assert len(codes) <= 1 and set(codes) <= allowed, (
                f"a valid {expected.__name__} was answered with {codes}"
            )

    async def _answer(self, frame: str | bytes, pongs: int) -> tuple[list[Any], int]:
        client = self.client
        assert client is not None
        errors_before, pongs_before = len(client.errors), client.pongs
        await client.send_raw(frame)
        await client.send(Ping())
        try:
            await client.wait_until(
                lambda: client.pongs >= pongs_before + pongs or client.closed is not None,
                self.timeout,
            )
        except TimeoutError:
            raise AssertionError(f"no answer within {self.timeout:g}s (hang)") from None
        assert client.closed is None, f"the connection was closed: {client.closed}"
        assert not client.malformed, f"the runtime sent malformed frames: {client.malformed}"
        return client.errors[errors_before:], client.pongs - pongs_before

    async def _oversize(self, frame: str | bytes) -> int | None:
        throwaway = await self._connect(self.user)
        try:
            await throwaway.send_raw(frame)
            try:
                await throwaway.wait_until(lambda: throwaway.closed is not None, self.timeout)
            except TimeoutError:
                raise AssertionError(
                    f"an oversize frame was not refused in {self.timeout:g}s"
                ) from None
            closed = throwaway.closed
            return closed.rcvd.code if closed is not None and closed.rcvd is not None else None
        finally:
            await throwaway.close()

    # --- set-up, the bystander, and the end checks ---------------------------------------

    async def _connect(self, user: str) -> AgentClient:
        # No keepalive pings: websockets makes their payload with the global ``random``,
        # which hypothesis, drawing frames on another thread meanwhile, takes for a strategy
        # that is not reproducible.
        return await AgentClient.connect(
            self.runtime.url, self.runtime.issue_token(user), ping_interval=None
        )

    async def _open(self) -> None:
        self.client = await self._connect(self.user)
        self.bystander = await self._connect(f"bystander-{uuid.uuid4().hex[:6]}")
        self._stop_bystander = asyncio.Event()
        self._bystander_task = asyncio.get_running_loop().create_task(self._bystander_runs())

    async def _bystander_runs(self) -> int:
        """Back-to-back runs on the bystander's connection until told to stop."""
        bystander, stop = self.bystander, self._stop_bystander
        assert bystander is not None and stop is not None
        runs = 0
        while not stop.is_set():
            await bystander.run(f"bystander run {runs}", "load", options=BYSTANDER_RUN)
            runs += 1
        return runs

    async def _finish(self, report: FuzzReport) -> None:
        client, bystander = self.client, self.bystander
        assert client is not None and bystander is not None
        assert self._stop_bystander is not None and self._bystander_task is not None
        self._stop_bystander.set()
        try:
            report.bystander_runs = await asyncio.wait_for(self._bystander_task, self.timeout)
        except Exception as exc:  # the bystander's run failed: that is the finding
            report.violations.append(f"bystander: {type(exc).__name__}: {exc}")
        # Every run the fuzz started is cancelled; each must still end with agent_completed.
        started = {e.run_id for e in client.events if e.type is EventType.AGENT_STARTED}
        report.runs_started = len(started)
        for run_id in started:
            if client.completion(run_id) is None:
                await client.send(Cancel(run_id))
        try:
            await client.wait_until(lambda: all(client.completion(r) for r in started), 30)
        except TimeoutError:
            open_runs = sorted(r for r in started if not client.completion(r))
            report.violations.append(f"fuzz runs never completed: {open_runs[:5]}")
        for who, c in (("fuzz connection", client), ("bystander", bystander)):
            c.close_findings()
            if c.findings:
                report.violations.append(f"{who}: {len(c.findings)} findings: {c.findings[0]}")
            if c.closed is not None:
                report.violations.append(f"{who} was closed: {c.closed}")
        if bystander.errors:
            report.violations.append(f"bystander got errors: {bystander.errors[:3]}")
        if {e.user_id for e in bystander.events} - {bystander.ack.user_id if bystander.ack else ""}:
            report.violations.append("bystander received another user's events")
        report.bystander_events = len(bystander.events)
        lat = sorted(bystander.latencies_ms)
        if lat:
            report.bystander_p99_ms = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        await client.close()
        await bystander.close()

    def run(self, examples: int, fuzz_seed: int) -> FuzzReport:
        """Fuzz with ``examples`` generated frames (hypothesis, seeded with ``fuzz_seed``)."""
        report = FuzzReport(seed=fuzz_seed)
        errors = _ErrorLog()
        loggers = [logging.getLogger("runtime"), logging.getLogger("websockets")]
        for logger in loggers:
            logger.addHandler(errors)
        started = time.perf_counter()
        self._call(self._open())
        try:

            @seed(fuzz_seed)
            @settings(
                max_examples=-(-examples // BATCH),
                deadline=None,
                database=None,  # nothing written to .hypothesis/
                phases=(Phase.generate, Phase.shrink),
                suppress_health_check=list(HealthCheck),
                print_blob=True,
            )
            @given(frames=st.lists(inbound_frames(self.limit), min_size=BATCH, max_size=BATCH))
            def fuzz(frames: list[str | bytes]) -> None:
                for frame in frames:
                    self.check(frame, report)

            try:
                fuzz()
            except AssertionError as exc:  # hypothesis shrank it to a minimal frame
                report.violations.append(f"seed {fuzz_seed}: {exc}")
        finally:
            self._call(self._finish(report))
            for logger in loggers:
                logger.removeHandler(errors)
        report.violations += [f"logged at ERROR: {r}" for r in errors.records]
        health = self.runtime.server.health()
        if health["status"] != "ok":
            report.violations.append(f"unhealthy after the fuzz: {health}")
        report.elapsed_s = time.perf_counter() - started
        return report


def _expect(frame: str | bytes) -> str | type:
    """What the runtime must answer: the codec's error code, or the valid message's type."""
    if isinstance(frame, bytes):
        return "binary_not_supported"
    try:
        return type(decode_client_message(frame))
    except ProtocolError as exc:
        return exc.code


# --- the soak -----------------------------------------------------------------------------

#: frames per round of the soak; rounds (each with a new seed) go on until the duration is up
SOAK_ROUND = 10_000


def soak(duration: float) -> BenchmarkResult:
    """Fuzz an in-process runtime in rounds of ``SOAK_ROUND`` frames for ``duration`` s."""
    config = test_config(max_frame_bytes=MAX_FRAME_BYTES, allow_client_faults=False)
    reports: list[FuzzReport] = []
    started = time.monotonic()
    with EmbeddedRuntime(config) as runtime:
        while not reports or time.monotonic() - started < duration:
            reports.append(FrameFuzzer(runtime).run(SOAK_ROUND, random.getrandbits(32)))
    answers: Counter[str] = Counter()
    for report in reports:
        answers.update(report.answers)
    frames = sum(r.frames for r in reports)
    violations = [v for r in reports for v in r.violations]
    elapsed = sum(r.elapsed_s for r in reports)
    result = BenchmarkResult("fuzz")
    result.details.update(
        rounds=[
            {
                "seed": r.seed,
                "frames": r.frames,
                "oversize": r.oversize,
                "runs_started": r.runs_started,
                "bystander_runs": r.bystander_runs,
                "elapsed_s": round(r.elapsed_s, 2),
                "violations": r.violations,
            }
            for r in reports
        ],
        answers=dict(answers),
    )
    seeds = ", ".join(str(r.seed) for r in reports)
    result.add(
        Figure(
            "fuzz.frames",
            frames,
            "frames",
            targets=(Target(">=", SOAK_ROUND),),
            note=f"seeds {seeds}",
        )
    )
    result.add(Figure("fuzz.frames_per_s", frames / elapsed if elapsed else math.nan, "frames/s"))
    result.add(none_allowed("fuzz.violations", len(violations), note="; ".join(violations[:2])))
    result.add(
        Figure(
            "fuzz.answer_kinds",
            len(answers),
            "kinds",
            note=", ".join(f"{k} {v:,}" for k, v in answers.most_common()),
        )
    )
    result.add(Figure("fuzz.runs_started", sum(r.runs_started for r in reports), "runs"))
    result.add(
        Figure(
            "fuzz.bystander_runs",
            sum(r.bystander_runs for r in reports),
            "runs",
            targets=(Target(">=", len(reports)),),
            note="another user's runs during the fuzz, each complete and in order",
        )
    )
    result.add(
        Figure(
            "fuzz.bystander_p99",
            max(r.bystander_p99_ms for r in reports),
            "ms",
            note="emit->receive, the worst round",
        )
    )
    return result
