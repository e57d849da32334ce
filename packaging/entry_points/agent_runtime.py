"""The bundled app's ``agent-runtime`` executable: the runtime server, tokens and load generator.

It shares the app folder's libraries, so it adds only a small launcher to the bundle.
"""

import sys

from runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
