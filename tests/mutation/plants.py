"""The table of planted regressions: one or more per class of failure the gate must catch.

Each ``Plant`` replaces one exact piece of source (which must occur exactly once, so a plant
that no longer applies fails loudly instead of testing nothing) and says what each stage must
report: a regular expression that the verdict's failures (quick check, full gate) or the live
validator's findings (rule ids and messages) must match. ``None`` means the stage is not
expected to catch it, with the reason in ``misses``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plant:
    name: str
    #: the class of regression (one row of the README's matrix)
    kind: str
    path: str
    old: str
    new: str
    quick: str | None
    full: str
    live: str | None
    #: why a stage that is None does not catch it
    misses: str = ""


#: where every event is encoded (``WebSocketManager._encode``, both engines)
_EMIT_PAYLOAD = "            return encode_event(event)\n"
_DELIVER = (
    "        self._deliver(route, event, payload)\n        if action is ChaosAction.DUPLICATE:"
)
_KEEP = "        stream.record(event, payload)\n"
_NEXT_EVENT = "        event = stream.next_event(context, event_type, data, time.time())\n"
_COMPLETED = (
    "            self.notifier.send_agent_completed(\n"
    "                ctx, status=status, duration_ms=duration_ms, result=result, error=error\n"
    "            )\n"
)


def _completed_unless(condition: str) -> str:
    return (
        f"            if not ({condition}):\n"
        "                self.notifier.send_agent_completed(\n"
        "                    ctx, status=status, duration_ms=duration_ms, result=result, "
        "error=error\n"
        "                )\n"
    )


PLANTS: tuple[Plant, ...] = (
    Plant(
        "type-renamed",
        "wrong or renamed event type",
        "runtime/manager.py",
        _EMIT_PAYLOAD,
        "            return encode_event(event).replace(b'\"tool_executing\"', "
        "b'\"tool_started\"')\n",
        quick=r"AEM018|unknown event type|tool_started",
        full=r"AEM018|unknown event type|tool_started",
        live=r"AEM018",
    ),
    Plant(
        "field-missing",
        "missing or null envelope field",
        "runtime/manager.py",
        _EMIT_PAYLOAD,
        "            return encode_event(event).replace(b'\"thread_id\":', b'\"thread\":')\n",
        quick=r"AEM018|thread_id",
        full=r"AEM018|thread_id",
        live=r"AEM018",
    ),
    Plant(
        "field-null",
        "missing or null envelope field",
        "runtime/manager.py",
        _EMIT_PAYLOAD,
        '            return encode_event(event).replace(b\'"agent_name":"\', '
        'b\'"agent_name":null,"x":"\')\n',
        quick=r"AEM018|agent_name",
        full=r"AEM018|agent_name",
        live=r"AEM018",
    ),
    Plant(
        "cross-user",
        "events delivered to another user",
        "runtime/manager.py",
        "        connections = route.connections\n        ticket =",
        "        connections = {c for r in self._users.values() for c in r.connections}\n"
        "        ticket =",
        quick=r"not its own|cross-delivery",
        full=r"not its own|cross-delivery|only to its owner",
        live=r"AEM022",
    ),
    Plant(
        "completed-twice",
        "agent_completed twice",
        "runtime/engine.py",
        _COMPLETED,
        _COMPLETED + _COMPLETED,
        quick=r"AEM003",
        full=r"AEM003",
        live=r"AEM003",
    ),
    Plant(
        "completed-missing-success",
        "agent_completed missing (success)",
        "runtime/engine.py",
        _COMPLETED,
        _completed_unless('status == "completed"'),
        quick=r"AEM016.*never sent agent_completed",
        full=r"AEM016.*never sent agent_completed",
        live=r"AEM012",
        misses="",
    ),
    Plant(
        "completed-missing-failure",
        "agent_completed missing (failure, crash)",
        "runtime/engine.py",
        _COMPLETED,
        _completed_unless('status == "failed"'),
        quick=r"AEM026|never sent agent_completed",
        full=r"AEM026|never sent agent_completed",
        live=r"AEM026",
    ),
    Plant(
        "completed-missing-cancel",
        "agent_completed missing (cancel)",
        "runtime/engine.py",
        _COMPLETED,
        _completed_unless('status == "cancelled"'),
        quick=None,
        full=r"AEM016.*never sent agent_completed",
        live=r"AEM012",
        misses="the quick check cancels no run",
    ),
    Plant(
        "completed-missing-timeout",
        "agent_completed missing (timeout)",
        "runtime/engine.py",
        _COMPLETED,
        _completed_unless('(error or "").startswith("run timed out")'),
        quick=None,
        full=r"(AEM016|AEM026).*never sent agent_completed",
        live=r"AEM026",
        misses="the quick check times no run out (a runtime's runs time out after minutes)",
    ),
    Plant(
        "tool-completed-missing",
        "tool_completed missing when a tool raises",
        "runtime/tools.py",
        "            self.websocket_manager.metrics.tool_calls.labels(call.tool_name, "
        "outcome.status).inc()\n",
        "            self.websocket_manager.metrics.tool_calls.labels(call.tool_name, "
        "outcome.status).inc()\n"
        '            if outcome.status == "error":\n'
        "                return outcome  # noqa\n",
        quick=r"AEM005",
        full=r"AEM005",
        live=r"AEM005",
    ),
    Plant(
        "order-swapped",
        "order swaps",
        "runtime/manager.py",
        "        if action is ChaosAction.REORDER:\n",
        "        if action is ChaosAction.REORDER or event_type is EventType.AGENT_STARTED:\n",
        quick=r"AEM011|AEM001",
        full=r"AEM011|AEM001",
        live=r"AEM011|AEM001",
    ),
    Plant(
        "timestamp-milliseconds",
        "timestamps implausible (unit)",
        "runtime/manager.py",
        _NEXT_EVENT,
        _NEXT_EVENT.replace("time.time()", "time.time() * 1000"),
        quick=r"AEM024.*milliseconds",
        full=r"AEM024.*milliseconds",
        live=r"AEM024",
    ),
    Plant(
        "timestamp-skewed",
        "timestamps implausible (clock skew)",
        "runtime/manager.py",
        _NEXT_EVENT,
        _NEXT_EVENT.replace("time.time()", "time.time() - 3600"),
        quick=r"AEM024",
        full=r"AEM024",
        live=r"AEM024",
    ),
    Plant(
        "latency-200ms",
        "per-event latency over budget",
        "runtime/manager.py",
        _DELIVER,
        "        asyncio.get_running_loop().call_later(\n"
        "            0.2, self._deliver, route, event, payload\n"
        "        )\n"
        "        if action is ChaosAction.DUPLICATE:",
        quick=r"events are\s+delivered late|latency p99",
        full=r"events are\s+delivered late|latency p99",
        live=r"AEM025",
    ),
    Plant(
        "seq-global",
        "misnumbered seq (one counter for all users)",
        "runtime/manager.py",
        "            stream = UserStream(user_id, MemoryStore(self.replay_buffer))\n",
        "            one = self.__dict__.setdefault('_one', MemoryStore(self.replay_buffer))\n"
        "            stream = UserStream(user_id, one)\n",
        quick=r"AEM027.*one counter",
        full=r"AEM027.*one counter|seq is not 1\.\.5",
        live=r"AEM027",
    ),
    Plant(
        "seq-from-zero",
        "misnumbered seq (starts at 0)",
        "runtime/manager.py",
        _EMIT_PAYLOAD,
        "            return encode_event(event).replace(\n"
        "                b'\"seq\":%d,' % event.seq, b'\"seq\":%d,' % (event.seq - 1), 1\n"
        "            )\n",
        quick=r"AEM018.*seq",
        full=r"AEM018.*seq",
        live=r"AEM018",
    ),
    Plant(
        "dispatcher-not-enhanced",
        "the dispatcher not enhanced",
        "runtime/registry.py",
        "        enhance_tool_dispatcher_with_notifications("
        "self.tool_dispatcher, websocket_manager)\n",
        "        pass\n",
        quick=r"did not enhance the tool dispatcher",
        full=r"did not enhance the tool dispatcher",
        live=None,
        misses="a run with no tool events breaks no rule: the monitor cannot know tools ran",
    ),
    Plant(
        "tool-call-id-broken",
        "broken tool_call_id pairing",
        "runtime/tools.py",
        "                call.context,\n"
        "                call.tool_call_id,\n"
        "                call.tool_name,\n"
        "                status=outcome.status,",
        "                call.context,\n                call.tool_call_id[::-1],\n"
        "                call.tool_name,\n                status=outcome.status,",
        quick=r"AEM005|AEM006",
        full=r"AEM005|AEM006",
        live=r"AEM005|AEM006",
    ),
    Plant(
        "send-failure-hidden",
        "failed sends hidden",
        "runtime/manager.py",
        "        ticket.failed += 1\n        if recipient:",
        "        ticket.ok += 1\n        if recipient:",
        quick=r"no delivery report says a send failed",
        full=r"no delivery report says a send failed",
        live=None,
        misses="the runtime itself reports the send as delivered: only a client can tell",
    ),
    Plant(
        "memory-events-retained",
        "memory retained per event (every Event)",
        "runtime/manager.py",
        _KEEP,
        _KEEP + "        self.__dict__.setdefault('_kept', []).append(event)\n",
        quick=None,
        full=r"retains something per event",
        live=None,
        misses="only the runtime's own memory shows it (the quick check and the monitor see "
        "the wire)",
    ),
    Plant(
        "memory-frames-retained",
        "memory retained per event (every frame)",
        "runtime/manager.py",
        _KEEP,
        _KEEP + "        self.__dict__.setdefault('_sent', []).append(payload)\n",
        quick=None,
        full=r"retains something per event",
        live=None,
        misses="only the runtime's own memory shows it",
    ),
    Plant(
        "no-resume-buffer",
        "events not buffered for resume while disconnected",
        "runtime/manager.py",
        _KEEP,
        "        stream.record(event, payload if route.connections else None)\n",
        quick=r"must keep a disconnected user's events for resume",
        full=r"must keep a disconnected user's events for resume|across the resume AEM009",
        live=None,
        misses="what a resume re-sends goes only to the resuming connection",
    ),
)
