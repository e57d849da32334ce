"""Where a cluster keeps its state in Redis: every key and channel, under one namespace.

With the default namespace ``aem``:

===============================  ==============================================================
``aem:epoch``                    the streams' epoch: every node's ``instance_id``
``aem:user:<user>:meta``         hash: ``seq`` (the user's last seq), ``prefix`` (event ids)
``aem:user:<user>:stream``       stream: the user's newest frames, entry id ``0-<seq>``
``aem:user:<user>``              channel: the user's frames as they are numbered
``aem:observer:seq``             the observer stream's last monitor_seq
``aem:observer:stream``          stream: the observer stream's newest frames, id ``0-<seq>``
``aem:observer``                 channel: observer frames as they are numbered
``aem:runs``                     hash: run_id -> the run's node, incarnation and ids
``aem:nodes``                    hash: node id -> its incarnation and when it joined
``aem:node:<node>``              the node's lease: its incarnation, expiring unless renewed
``aem:node:<node>:control``      channel: keeps the node subscribed while it has no connections
``aem:applied:<node>:<inc>``     the last batch number the node's incarnation applied
                                 (a day): a retried batch is not applied twice
===============================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "aem"


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys and channels of one namespace."""

    namespace: str = DEFAULT_NAMESPACE

    @property
    def epoch(self) -> str:
        return f"{self.namespace}:epoch"

    def user_meta(self, user_id: str) -> str:
        return f"{self.namespace}:user:{user_id}:meta"

    def user_stream(self, user_id: str) -> str:
        return f"{self.namespace}:user:{user_id}:stream"

    def user_channel(self, user_id: str) -> str:
        return f"{self.namespace}:user:{user_id}"

    @property
    def user_channel_prefix(self) -> str:
        return f"{self.namespace}:user:"

    @property
    def observer_seq(self) -> str:
        return f"{self.namespace}:observer:seq"

    @property
    def observer_stream(self) -> str:
        return f"{self.namespace}:observer:stream"

    @property
    def observer_channel(self) -> str:
        return f"{self.namespace}:observer"

    @property
    def runs(self) -> str:
        return f"{self.namespace}:runs"

    @property
    def nodes(self) -> str:
        return f"{self.namespace}:nodes"

    def lease(self, node_id: str) -> str:
        return f"{self.namespace}:node:{node_id}"

    def control_channel(self, node_id: str) -> str:
        """Keeps the node's subscription open while it has no connections."""
        return f"{self.namespace}:node:{node_id}:control"
