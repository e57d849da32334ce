"""``python -m monitor`` is ``agent-monitor``."""

import sys

from .cli import main

sys.exit(main())
