"""``agent-monitor``: the desktop monitor.

Qt is imported only inside ``main`` so that ``import monitor.cli`` (and ``--help``,
``--version``) stay Qt-free and fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.display_check import describe, display_problem, read_os_release
from monitor.services.capture_process import CAPTURE_ARGUMENT
from monitor.services.capture_process import main as capture_main
from monitor.stop_signals import StopSignals


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-monitor",
        description=(
            "Watch agent progress events live. Without --connect it embeds a runtime with "
            "demo traffic, so it works with no setup."
        ),
        epilog=(
            "Ctrl+C (SIGINT) or SIGTERM closes the window as File > Quit does, recording "
            "closed, and exits with 128 + the signal's number: 130 or 143."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--connect",
        metavar="URL",
        help="watch a running runtime instead, e.g. ws://staging.example.com:8765",
    )
    parser.add_argument(
        "--token",
        metavar="T",
        help="monitor token for --connect (agent-runtime token --user ops --role monitor)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="PATH",
        help="run for --after seconds, save a PNG of the window to PATH and exit",
    )
    parser.add_argument(
        "--after",
        metavar="SECONDS",
        type=float,
        default=5.0,
        help="seconds to run before taking the --screenshot (default 5)",
    )
    from monitor.services.predeploy.headless import add_check_parser  # light: no Qt, no I/O

    commands = parser.add_subparsers(dest="command")
    add_check_parser(commands)
    # Listed for --help only: main() hands ``replay …`` to monitor.replay_cli, whose parser
    # owns its arguments (``agent-monitor replay --help``).
    commands.add_parser(
        "replay",
        help="replay a recording (or JSON Lines frames) headless and print its findings; "
        "--check exits 1 on error findings",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == [CAPTURE_ARGUMENT]:  # the ingest's capture process, in a frozen app
        return capture_main()
    if arguments[:1] == ["replay"]:  # headless: never starts Qt
        from monitor.replay_cli import main as replay

        return replay(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.command == "check":  # headless: never starts Qt
        from monitor.services.predeploy.headless import run_check

        return run_check(args)
    if args.connect and not args.token:
        parser.error("--connect needs --token (a token with the monitor role)")
    if args.token and not args.connect:
        parser.error("--token is only used with --connect")
    if args.after < 0:
        parser.error("--after must be >= 0")
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if args.screenshot and headless:
        # a screenshot needs no screen: render offscreen (docs builds, CI)
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    problem = display_problem(os.environ)
    if problem is not None:  # Qt would abort, naming another library
        display = os.environ.get("DISPLAY", "")
        print(describe(problem, display, read_os_release()), file=sys.stderr)
        return 1
    # Before Qt loads: from here on SIGINT and SIGTERM are noted, never raised (run_app
    # closes the window on them); a Ctrl+C during the imports is not lost in one of them.
    stop_signals = StopSignals().install()
    try:
        from monitor._qt.app import run_app

        return run_app(args, stop_signals)
    finally:
        stop_signals.uninstall()


if __name__ == "__main__":
    sys.exit(main())
