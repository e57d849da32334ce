"""``WebSocketNotifier``: one ``send_*`` method per event type, the only way events are made.

The methods are synchronous on purpose: an event is numbered, buffered and queued for every
connection before the call returns, so they are safe to call from ``finally`` blocks of a
run that is being cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .context import UserExecutionContext
from .manager import UnencodableEventError, WebSocketManager
from .protocol import Event, EventType, ProtocolError, RunStatus

log = logging.getLogger(__name__)

#: longest repr sent in place of a result that cannot be encoded
MAX_REPR = 1000


class WebSocketNotifier:
    """Emits the protocol's events for a run through a ``WebSocketManager``."""

    def __init__(self, websocket_manager: WebSocketManager) -> None:
        self.websocket_manager = websocket_manager

    def _emit(
        self, context: UserExecutionContext, event_type: EventType, data: dict[str, Any]
    ) -> Event | None:
        data["correlation_id"] = context.request_id
        try:
            return self.websocket_manager.emit(context, event_type, data)
        except ProtocolError as exc:  # data the protocol does not allow: no event is made
            _log_dropped(context, exc)
            raise
        except UnencodableEventError as exc:
            if "result" not in data:
                _log_dropped(context, exc)
                raise
            # A result JSON cannot carry must not cost the user the event itself.
            log.warning(
                "run %s (request %s): %s; sending its repr instead",
                context.run_id,
                context.request_id,
                exc,
            )
            data["result"] = {"unserializable": repr(data["result"])[:MAX_REPR]}
            return self.websocket_manager.emit(context, event_type, data)

    def send_agent_started(self, context: UserExecutionContext, user_input: str) -> Event | None:
        return self._emit(context, EventType.AGENT_STARTED, {"input": user_input})

    def send_agent_thinking(
        self, context: UserExecutionContext, reasoning: str, step: int
    ) -> Event | None:
        return self._emit(context, EventType.AGENT_THINKING, {"reasoning": reasoning, "step": step})

    def send_tool_executing(
        self,
        context: UserExecutionContext,
        tool_call_id: str,
        tool_name: str,
        parameters: Mapping[str, Any],
    ) -> Event | None:
        return self._emit(
            context,
            EventType.TOOL_EXECUTING,
            {"tool_call_id": tool_call_id, "tool_name": tool_name, "parameters": dict(parameters)},
        )

    def send_tool_completed(
        self,
        context: UserExecutionContext,
        tool_call_id: str,
        tool_name: str,
        *,
        status: str,
        duration_ms: float,
        result: Any = None,
        error: str | None = None,
    ) -> Event | None:
        data: dict[str, Any] = {
            "tool_call_id": tool_call_id,
            "tool_name": tool_name,
            "status": status,
            "duration_ms": round(duration_ms, 3),
        }
        if status == "success":
            data["result"] = result
        else:
            data["error"] = error or "tool failed"
        return self._emit(context, EventType.TOOL_COMPLETED, data)

    def send_partial_result(
        self, context: UserExecutionContext, content: str, is_final: bool = False
    ) -> Event | None:
        return self._emit(
            context, EventType.PARTIAL_RESULT, {"content": content, "is_final": is_final}
        )

    def send_agent_error(
        self, context: UserExecutionContext, error_type: str, message: str
    ) -> Event | None:
        return self._emit(
            context, EventType.AGENT_ERROR, {"error_type": error_type, "message": message}
        )

    def send_agent_completed(
        self,
        context: UserExecutionContext,
        *,
        status: str,
        duration_ms: float,
        result: Any = None,
        error: str | None = None,
    ) -> Event | None:
        data: dict[str, Any] = {"status": status, "duration_ms": round(duration_ms, 3)}
        if status == RunStatus.COMPLETED:
            data["result"] = result
        else:
            data["error"] = error or status
        return self._emit(context, EventType.AGENT_COMPLETED, data)


def _log_dropped(context: UserExecutionContext, exc: Exception) -> None:
    """An event that cannot be made or encoded is dropped (no seq is used) and the error
    raised to the caller: logged here, where it is dropped, as the agent may catch the
    error and go on."""
    log.warning(
        "run %s (request %s): %s; the event was not sent", context.run_id, context.request_id, exc
    )
