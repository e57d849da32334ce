"""``agent-monitor check``: the pre-deploy check without a GUI, for CI and scripts.

Prints one line per test as it finishes and, last, the one-line verdict; exits 0 for GO,
1 for NO-GO and 2 for ERROR. Without ``--url`` it starts an embedded runtime (client
faults allowed, watched live so its findings join the report). No Qt is imported here.

Credentials should come from the environment (``AEM_RUNTIME_SECRET``, ``AEM_RUNTIME_TOKENS``,
``AEM_RUNTIME_MONITOR_TOKEN``) rather than ``--secret``/``--token``: command-line arguments
are visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .runner import CheckRun

#: the embedded runtime's agent pace for a check: the suite's own in-process default
EMBEDDED_PACE = 0.02


def add_check_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``check`` to ``agent-monitor``'s sub-commands; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="run the mission-critical suite against a runtime: GO / NO-GO / ERROR",
        description=(
            "Run the mission-critical suite (tests/mission_critical/) against a runtime and "
            "print one line per test, then a one-line verdict. Exit code 0 = GO (all tests "
            "passed; skips are listed), 1 = NO-GO (tests failed), 2 = ERROR (no answer: "
            "target unreachable, bad credentials, timeout, crash)."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--url", metavar="URL", help="check the runtime at ws://HOST:PORT (e.g. staging)"
    )
    where.add_argument(
        "--embedded",
        action="store_true",
        help="start a runtime in this process and check it (the default without --url)",
    )
    parser.add_argument(
        "--secret",
        metavar="S",
        help="the target's token secret, so the suite mints its own users "
        "(better: env AEM_RUNTIME_SECRET)",
    )
    parser.add_argument(
        "--token",
        metavar="T",
        action="append",
        default=[],
        help="a user or monitor token (sorted by its role claim); repeatable "
        "(env AEM_RUNTIME_TOKENS, AEM_RUNTIME_MONITOR_TOKEN)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="run only the quick validation (test_final_validation.py, a few seconds)",
    )
    parser.add_argument("--junit", metavar="PATH", help="also write the JUnit XML to PATH")
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=float,
        help="give up (ERROR) after S seconds (default 600, --quick 120)",
    )
    parser.add_argument(
        "--report-dir",
        metavar="DIR",
        help="where run folders and the history go "
        "(default: the user data directory's checks/, or $AEM_CHECK_DIR)",
    )
    parser.set_defaults(check_parser=parser)  # run_check reports usage errors with it
    return parser


def _environment_tokens() -> list[str]:
    tokens = [t for t in os.environ.get("AEM_RUNTIME_TOKENS", "").split(",") if t.strip()]
    monitor = os.environ.get("AEM_RUNTIME_MONITOR_TOKEN")
    return tokens + ([monitor] if monitor else [])


class _Printer:
    """Prints each test once, as it finishes, then nothing twice."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.printed: set[str] = set()
        self.announced_collection = False
        self.announced_start = False

    def __call__(self, run: CheckRun) -> None:
        from .runner import CheckState

        progress = run.progress
        if run.state is CheckState.RUNNING and not self.announced_start:
            self.announced_start = True
            self._print(f"target ok; running pytest (pid {run.pid})")
        if progress.collected is not None and not self.announced_collection:
            self.announced_collection = True
            self._print(f"collected {progress.collected} tests")
        total = progress.counts().total
        for nodeid in progress.drain_changes():
            test = progress.tests.get(nodeid)
            if test is None or not test.outcome.finished or nodeid in self.printed:
                continue
            self.printed.add(nodeid)
            reason = f" — {test.reason}" if test.reason else ""
            self._print(
                f"[{len(self.printed):>3}/{total}] {test.outcome.value.upper():<7} "
                f"{nodeid} ({test.duration:.2f}s){reason}"
            )

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``agent-monitor check`` with parsed ``args``; returns the exit code."""
    out = out or sys.stdout
    parser: argparse.ArgumentParser = args.check_parser
    if not args.url and (args.token or args.secret):
        parser.error("--secret and --token go with --url (--embedded uses its own runtime)")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be > 0")
    from .suite import check_unavailable

    unavailable = check_unavailable()
    if unavailable:  # a bundled app: say so before starting a runtime for nothing
        print(f"ERROR: {unavailable}", file=out, flush=True)
        return 2

    from monitor.model.predeploy.findings import findings_between
    from monitor.model.predeploy.target import CheckTarget, InvalidTarget, split_tokens
    from monitor.services.workspace import Workspace, embedded_config

    from .run_folders import checks_dir
    from .runner import CheckRun, FindingsSource
    from .suite import full_suite, quick_suite

    suite = (quick_suite() if args.quick else full_suite()).with_timeout(args.timeout)
    root = Path(args.report_dir) if args.report_dir else checks_dir()
    workspace: Workspace | None = None
    findings: FindingsSource | None = None
    runtime_log: logging.Handler | None = None
    runtime_logger = logging.getLogger("runtime")
    propagate = runtime_logger.propagate
    try:
        if args.url:
            try:
                users, monitor = split_tokens(list(args.token) or _environment_tokens())
                secret = args.secret or os.environ.get("AEM_RUNTIME_SECRET") or None
                target = CheckTarget(
                    args.url, "remote", secret=secret, user_tokens=users, monitor_token=monitor
                )
            except InvalidTarget as exc:
                parser.error(str(exc))
        else:
            # the runtime logs every fault the suite injects: keep that out of the terminal
            runtime_logger.propagate = False
            config = embedded_config().with_overrides(pace=EMBEDDED_PACE)
            workspace = Workspace.embedded(demo=False, config=config)
            assert workspace.runtime is not None
            target = CheckTarget(workspace.target, "embedded", secret=workspace.secret)
            findings = partial(findings_between, workspace.session.store)
            print(f"started an embedded runtime at {target.url}", file=out, flush=True)
        run = CheckRun(target, suite, root=root, findings=findings).start()
        if workspace is not None and run.files is not None:
            runtime_log = logging.FileHandler(run.files.folder / "runtime.log", encoding="utf-8")
            runtime_logger.addHandler(runtime_log)
        print(
            f"{suite.title} of {target.describe()} — {target.credentials()}", file=out, flush=True
        )
        try:
            verdict = run.wait(0.1, _Printer(out))
        except KeyboardInterrupt:
            run.cancel("interrupted (Ctrl+C)")
            assert run.verdict is not None
            verdict = run.verdict
        if run.files is not None:
            if args.junit and run.files.junit.exists():
                destination = Path(args.junit)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run.files.junit, destination)
                print(f"JUnit XML: {destination}", file=out)
            print(f"report: {run.files.report}", file=out)
        if verdict.findings:
            print(verdict.findings_text(), file=out)
        if run.save_error:
            print(run.save_error, file=out)
        print(verdict.line(), file=out, flush=True)
        return verdict.exit_code
    finally:
        if workspace is not None:
            workspace.stop()
        runtime_logger.propagate = propagate
        if runtime_log is not None:
            runtime_logger.removeHandler(runtime_log)
            runtime_log.close()
