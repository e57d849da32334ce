"""Execution: a fresh ``ExecutionEngine`` per run, made and tracked by ``ExecutionEngineFactory``.

The engine is where a run's lifecycle is guaranteed: ``agent_started`` first, and exactly one
``agent_completed`` on every path (success, failure, cancel, timeout), emitted from a
``finally`` block after every tool of the run has completed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .agents.base import Agent, AgentCrash, RunScope
from .config import RuntimeConfig
from .context import UserExecutionContext
from .faults import FaultConfig, FaultPlan
from .log_context import correlated
from .log_forwarding import forwarding_logs
from .manager import WebSocketManager
from .metrics import RuntimeMetrics
from .notifier import WebSocketNotifier
from .protocol import RunStatus
from .registry import AgentRegistry

log = logging.getLogger(__name__)


class ConcurrencyLimitError(RuntimeError):
    """The user already has the maximum number of runs in progress."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended (what its ``agent_completed`` said)."""

    run_id: str
    status: str
    result: Any = None
    error: str | None = None
    duration_ms: float = 0.0


class ExecutionEngine:
    """Executes exactly one run of one agent for one user."""

    def __init__(
        self,
        context: UserExecutionContext,
        agent: Agent,
        registry: AgentRegistry,
        notifier: WebSocketNotifier,
        plan: FaultPlan,
        *,
        run_timeout: float,
        pace: float,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.context = context
        self.agent = agent
        self.registry = registry
        self.notifier = notifier
        self.plan = plan
        self.run_timeout = run_timeout
        self.pace = pace
        self.options = options or {}
        self.outcome: RunOutcome | None = None

    async def execute(self, text: str) -> RunOutcome:
        """Run the agent on ``text``; always ends with one ``agent_completed``."""
        ctx = self.context
        started = time.perf_counter()
        status, result, error = RunStatus.FAILED, None, None
        log.info(
            "run %s started: user=%s agent=%s thread=%s request=%s",
            ctx.run_id,
            ctx.user_id,
            ctx.agent_name,
            ctx.thread_id,
            ctx.request_id,
        )
        self.notifier.send_agent_started(ctx, text)
        scope = RunScope(
            ctx,
            text,
            notifier=self.notifier,
            dispatcher=self.registry.tool_dispatcher,
            plan=self.plan,
            pace=self.pace,
            options=self.options,
        )
        try:
            async with asyncio.timeout(self.run_timeout):
                result = await self.agent.run(scope)
            status = RunStatus.COMPLETED
        except asyncio.CancelledError:
            status, error = RunStatus.CANCELLED, "run cancelled"
            # The cancellation was delivered by cancel(); the run ends normally from here.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except TimeoutError:
            error = f"run timed out after {self.run_timeout:g}s"
            self.notifier.send_agent_error(ctx, "timeout", error)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, AgentCrash):
                # Injected on purpose (the agent_crash_rate knob, e.g. the monitor's demo): a
                # traceback says nothing new, and a demo's would fill the terminal.
                log.warning(
                    "run %s of %s failed (request %s): injected fault: %s",
                    ctx.run_id,
                    ctx.user_id,
                    ctx.request_id,
                    error,
                )
                log.debug(
                    "traceback of the injected crash in run %s (request %s)",
                    ctx.run_id,
                    ctx.request_id,
                    exc_info=True,
                )
            else:
                log.error(
                    "run %s of %s failed (request %s): %s",
                    ctx.run_id,
                    ctx.user_id,
                    ctx.request_id,
                    error,
                    exc_info=True,
                )
            self.notifier.send_agent_error(ctx, type(exc).__name__, str(exc) or error)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            self.notifier.send_agent_completed(
                ctx, status=status, duration_ms=duration_ms, result=result, error=error
            )
            self.outcome = RunOutcome(ctx.run_id, status, result, error, duration_ms)
            log.info(
                "run %s %s in %.0f ms (user=%s request=%s)",
                ctx.run_id,
                status,
                duration_ms,
                ctx.user_id,
                ctx.request_id,
            )
        return self.outcome


class ExecutionEngineFactory:
    """Creates one engine per run, enforces the per-user concurrency limit, cleans up."""

    def __init__(
        self,
        registry: AgentRegistry,
        websocket_manager: WebSocketManager,
        config: RuntimeConfig | None = None,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.websocket_manager = websocket_manager
        self.notifier = WebSocketNotifier(websocket_manager)
        self.config = config or RuntimeConfig()
        self.metrics = metrics or websocket_manager.metrics
        self._active: dict[str, dict[str, asyncio.Task[RunOutcome]]] = {}
        #: the context of each run in progress, by run id (for what is logged about it)
        self._contexts: dict[str, UserExecutionContext] = {}

    def active_runs(self, user_id: str | None = None) -> int:
        if user_id is None:
            return sum(len(runs) for runs in self._active.values())
        return len(self._active.get(user_id, {}))

    def create(
        self,
        context: UserExecutionContext,
        faults: FaultConfig | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ExecutionEngine:
        """A fresh engine for ``context`` (raises ``ConcurrencyLimitError`` over the limit)."""
        if self.active_runs(context.user_id) >= self.config.max_runs_per_user:
            raise ConcurrencyLimitError(
                f"{context.user_id} already has {self.config.max_runs_per_user} runs in "
                "progress; wait for one to finish"
            )
        options = options or {}
        pace = options.get("pace", self.config.pace)
        return ExecutionEngine(
            context,
            self.registry.get(context.agent_name),
            self.registry,
            self.notifier,
            FaultPlan(faults or self.config.faults),
            run_timeout=self.config.run_timeout,
            pace=float(pace),
            options=options,
        )

    def start(
        self,
        context: UserExecutionContext,
        text: str,
        faults: FaultConfig | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> asyncio.Task[RunOutcome]:
        """Create an engine and run it as a task that outlives the user's connection."""
        engine = self.create(context, faults, options)
        self.websocket_manager.attach_plan(context.run_id, engine.plan)
        task = asyncio.get_running_loop().create_task(
            self._run(engine, text), name=f"run-{context.run_id}"
        )
        self._active.setdefault(context.user_id, {})[context.run_id] = task
        self._contexts[context.run_id] = context
        self.metrics.runs_started.inc()
        self.metrics.runs_active.inc()
        return task

    async def _run(self, engine: ExecutionEngine, text: str) -> RunOutcome:
        # Cleanup happens inside the task, so it is done by the time anyone awaiting the
        # run wakes up (a done-callback would run later).
        context = engine.context
        try:
            with (
                correlated(
                    user_id=context.user_id,
                    thread_id=context.thread_id,
                    run_id=context.run_id,
                    agent_name=context.agent_name,
                ),
                forwarding_logs(context.run_id, self.websocket_manager.publish_log),
            ):
                return await engine.execute(text)
        finally:
            self._contexts.pop(context.run_id, None)
            runs = self._active.get(context.user_id, {})
            runs.pop(context.run_id, None)
            if not runs:
                self._active.pop(context.user_id, None)
            self.websocket_manager.detach_plan(context.run_id)
            self.metrics.runs_active.dec()
            status = engine.outcome.status if engine.outcome else "crashed"
            self.metrics.runs_finished.labels(status).inc()

    def runs_of(self, user_id: str) -> list[UserExecutionContext]:
        """The contexts of ``user_id``'s runs in progress, oldest first."""
        return [self._contexts[r] for r in self._active.get(user_id, {}) if r in self._contexts]

    def is_active(self, run_id: str, user_id: str | None = None) -> bool:
        """Whether run ``run_id`` (of ``user_id``, when given) is still executing: its task
        has not ended."""
        if user_id is not None:
            return run_id in self._active.get(user_id, {})
        return any(run_id in runs for runs in list(self._active.values()))

    def cancel(self, user_id: str, run_id: str) -> bool:
        """Cancel one of ``user_id``'s runs; False if that user has no such run."""
        task = self._active.get(user_id, {}).get(run_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def cancel_run(self, run_id: str) -> bool:
        """Cancel run ``run_id`` of whichever user (a cluster node whose run another node
        has already ended); False if no such run is in progress here."""
        for runs in self._active.values():
            task = runs.get(run_id)
            if task is not None and not task.done():
                task.cancel()
                return True
        return False

    async def shutdown(self) -> None:
        """Cancel every run and wait until each has sent its ``agent_completed``."""
        tasks = [t for runs in self._active.values() for t in runs.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
