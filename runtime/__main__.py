"""``python -m runtime`` is ``agent-runtime``."""

import sys

from .cli import main

sys.exit(main())
