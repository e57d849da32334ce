"""cluster: three Redis-engine nodes, clients hopping between them, a node SIGKILLed every
20 s (``tests.benchmarks.cluster_soak``, where it is the ``cluster_soak`` benchmark).

Here for ``python -m tests.soak cluster``: ``soak(duration)`` as every scenario has.
"""

from __future__ import annotations

from tests.benchmarks.cluster_soak import soak

__all__ = ["soak"]
