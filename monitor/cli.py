"""``agent-monitor``: the desktop monitor (not built yet)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    print("agent-monitor: the desktop monitor is not built yet; run `agent-runtime serve`.",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
