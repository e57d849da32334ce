"""``NodeTable``: the nodes of a runtime cluster, as the observer stream shows them.

A runtime in cluster mode is several processes ("nodes") that share their streams; a monitor
connected to any of them sees every node's frames. Events and delivery reports name the node
they come from (``node``), and ``node`` frames say when one joined, left (stopped on
purpose) or was lost (stopped renewing its lease; another node ended its runs).

A node that left or was lost is an outage *of that node*, not of the runtime: the other nodes
go on serving, and the monitor's own connection (``ObservationSession.status`` and
``outages``) is another matter. Each node's outages run from the frame that said it went
until one that says it joined again.

Times are receive times (the monitor's clock), like everything the timeline draws. Frames
without a node (a single runtime, recordings made before cluster mode) make no node: their
code is ``NO_NODE``.

Node ids tend to share a prefix (``staging-a-4121``, ``staging-b-4123``): views show them
by ``label``, without the part every node's id starts with (``a-4121``, ``b-4123``), and
give the whole id where there is room (tooltips).
"""

from __future__ import annotations

import re
import zlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from runtime.protocol import NodeState, NodeStatus

#: the node code of an event that names no node
NO_NODE = -1
#: how many colours node colours are picked from (the widgets' palette has this many)
NODE_COLOURS = 8
#: outages remembered per node (the newest): a node flapping for days stays bounded
MAX_OUTAGES = 200
#: what separates the parts of a node id (a label drops whole parts only)
_SEPARATOR = re.compile(r"[-_.:/@]")


class NodePresence(StrEnum):
    """Whether a node serves, as far as the stream said."""

    UP = "up"
    #: stopped on purpose (its runs ended ``cancelled``)
    LEFT = "left"
    #: stopped renewing its lease; another node ended its runs
    LOST = "lost"


_PRESENCE_OF = {NodeState.LEFT: NodePresence.LEFT, NodeState.LOST: NodePresence.LOST}


@dataclass(frozen=True, slots=True)
class NodeOutage:
    """A stretch of receive time in which one node was gone."""

    start: float
    end: float | None  # None: still gone
    presence: NodePresence  # LEFT or LOST
    #: what the ``node`` frame said (for ``lost``: how many runs it left, who ended them)
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One node as views show it (a copy: the table goes on changing)."""

    name: str
    #: its name without the prefix every node's shares (``short_labels``)
    label: str
    #: its code in the store's ``node`` column
    code: int
    #: its colour, an index into a palette of ``NODE_COLOURS``
    colour: int
    presence: NodePresence
    first_seen: float
    #: when it came into its present state (joined, first seen, left or lost)
    since: float
    events: int
    deliveries: int
    #: what its last ``node`` frame said
    detail: str
    outages: tuple[NodeOutage, ...]

    @property
    def up(self) -> bool:
        return self.presence is NodePresence.UP


@dataclass(eq=False, slots=True)
class _Node:
    name: str
    code: int
    colour: int
    first_seen: float
    since: float
    presence: NodePresence = NodePresence.UP
    events: int = 0
    deliveries: int = 0
    detail: str = ""
    outages: deque[NodeOutage] = field(default_factory=lambda: deque(maxlen=MAX_OUTAGES))

    def info(self, label: str) -> NodeInfo:
        return NodeInfo(
            name=self.name,
            label=label,
            code=self.code,
            colour=self.colour,
            presence=self.presence,
            first_seen=self.first_seen,
            since=self.since,
            events=self.events,
            deliveries=self.deliveries,
            detail=self.detail,
            outages=tuple(self.outages),
        )


class NodeTable:
    """Every node seen, by code (0, 1, 2 … in the order they were first seen; never reused).

    Written by whatever feeds the store, with its lock held; views read ``snapshot``.
    """

    def __init__(self) -> None:
        #: node names by code (append-only: a view reads only the tail it has not seen)
        self.names: list[str] = []
        self._nodes: list[_Node] = []
        self._codes: dict[str, int] = {}
        #: ``node`` frames taken (a cluster announced itself)
        self.status_frames = 0
        #: bumped when a node appears or its presence changes (not for counts): a view
        #: redraws what it shows of the nodes when this moved
        self.changes = 0
        #: each node's label (``short_labels``), replaced whole when a node appears: a view
        #: may read it without the store's lock
        self.labels: Mapping[str, str] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def several(self) -> bool:
        """More than one node: worth a column that tells their events apart."""
        return len(self._nodes) > 1

    @property
    def cluster(self) -> bool:
        """The stream comes from a cluster: several nodes, or one that said so in a
        ``node`` frame. A single runtime (or an old recording) is no cluster."""
        return self.several or self.status_frames > 0

    def code_of(self, name: str) -> int | None:
        """The code of node ``name`` (None: never seen)."""
        return self._codes.get(name)

    def name_of(self, code: int) -> str | None:
        """The name of node ``code`` (None: ``NO_NODE``, or no such code)."""
        return self.names[code] if 0 <= code < len(self.names) else None

    def label(self, name: str) -> str:
        """How views name node ``name`` where room is short (``short_labels``)."""
        return self.labels.get(name, name)

    def colour_of(self, code: int) -> int | None:
        """The colour index of node ``code`` (None: ``NO_NODE``, or no such code)."""
        return self._nodes[code].colour if 0 <= code < len(self._nodes) else None

    # --- what the stream says -----------------------------------------------------------

    def event(self, name: str | None, at: float) -> int:
        """An event from node ``name`` arrived at ``at``; returns the node's code."""
        if name is None:
            return NO_NODE
        node = self._node(name, at)
        node.events += 1
        if node.presence is not NodePresence.UP:
            # emitting again: back (after a runtime restart that kept its node id)
            self._end_outage(node, at)
            node.presence, node.since = NodePresence.UP, at
            self.changes += 1
        return node.code

    def runtime_restarted(self, at: float) -> None:
        """The runtime restarted (a new ``instance_id``): the nodes seen so far are gone
        until they are heard from again. A single runtime restarted gets a new node id
        (its pid changed): it shows as a node that left and a new one, not as two up."""
        for node in self._nodes:
            if node.presence is NodePresence.UP:
                node.outages.append(
                    NodeOutage(at, None, NodePresence.LEFT, "the runtime restarted")
                )
                node.presence, node.since = NodePresence.LEFT, at
                node.detail = "the runtime restarted"
                self.changes += 1

    def delivery(self, name: str | None, at: float) -> None:
        """A delivery report from node ``name`` arrived at ``at``."""
        if name is not None:
            self._node(name, at).deliveries += 1

    def status(self, frame: NodeStatus, at: float) -> None:
        """A ``node`` frame arrived at ``at``: the node joined, left or was lost."""
        self.status_frames += 1
        node = self._node(frame.node, at)
        node.detail = frame.detail
        if frame.state is NodeState.JOINED:
            # (again, while up: it restarted under the same id; up since now all the same)
            node.since = at
            if node.presence is not NodePresence.UP:
                self._end_outage(node, at)
                node.presence = NodePresence.UP
                self.changes += 1
            return
        presence = _PRESENCE_OF[frame.state]
        if node.presence is NodePresence.UP:
            node.outages.append(NodeOutage(at, None, presence, frame.detail))
            node.presence, node.since = presence, at
            self.changes += 1
        elif node.presence is not presence:
            # said gone twice, differently (left, then found lost): one outage, as said last
            last = node.outages[-1]
            node.outages[-1] = NodeOutage(last.start, None, presence, frame.detail)
            node.presence = presence
            self.changes += 1

    # --- reading ------------------------------------------------------------------------

    def snapshot(self) -> tuple[NodeInfo, ...]:
        """Every node, by code."""
        labels = self.labels
        return tuple(node.info(labels.get(node.name, node.name)) for node in self._nodes)

    def get(self, name: str) -> NodeInfo | None:
        code = self._codes.get(name)
        return None if code is None else self._nodes[code].info(self.label(name))

    # --- internals ----------------------------------------------------------------------

    def _node(self, name: str, at: float) -> _Node:
        code = self._codes.get(name)
        if code is not None:
            return self._nodes[code]
        node = _Node(name, len(self._nodes), self._free_colour(name), at, at)
        self._codes[name] = node.code
        self._nodes.append(node)
        self.names.append(name)
        self.labels = short_labels(self.names)
        self.changes += 1
        return node

    def _free_colour(self, name: str) -> int:
        """The colour the name hashes to, or the next one no node has yet: the few nodes
        of a cluster get different colours, and a node mostly keeps its colour from one
        session (and one monitor) to the next, whichever order the nodes are seen in."""
        preferred = zlib.crc32(name.encode()) % NODE_COLOURS
        taken = {node.colour for node in self._nodes}
        for step in range(NODE_COLOURS):
            colour = (preferred + step) % NODE_COLOURS
            if colour not in taken:
                return colour
        return preferred

    def _end_outage(self, node: _Node, at: float) -> None:
        if node.outages and node.outages[-1].end is None:
            last = node.outages[-1]
            node.outages[-1] = NodeOutage(last.start, at, last.presence, last.detail)


def short_labels(names: Iterable[str]) -> dict[str, str]:
    """Each name without the leading parts all of them share (parts end at ``-``, ``_``,
    ``.``, ``:``, ``/`` or ``@``): ``staging-a-4121``, ``staging-b-4123`` → ``a-4121``,
    ``b-4123``. One name alone, or names that share no whole part, are kept whole."""
    names = list(names)
    cut = 0
    if len(names) > 1:
        first = names[0]
        for part in _SEPARATOR.finditer(first):
            prefix = first[: part.end()]
            # a whole part every name has, and something after it in each
            if not all(name.startswith(prefix) and len(name) > len(prefix) for name in names):
                break
            cut = part.end()
    return {name: name[cut:] for name in names}
