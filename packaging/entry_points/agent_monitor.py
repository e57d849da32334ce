"""The bundled app's ``agent-event-monitor`` executable: ``agent-monitor`` with all its commands.

PyInstaller runs this file as ``__main__``; ``monitor/__main__.py`` cannot serve, because its
relative import needs the ``monitor`` package to be the one running.
"""

import sys

from monitor.cli import main

if __name__ == "__main__":
    sys.exit(main())
