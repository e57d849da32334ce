"""Building the pytest command of a check: a pure function of target, suite and run folder.

Finding the suite and the Python that runs it is ``monitor.services.predeploy.suite``.

``build_command`` returns the argv, environment and working directory; nothing is started
here, so tests assert on exactly what would run. Credentials travel in environment
variables the suite's conftest reads (``AEM_RUNTIME_*``), never in argv, where ``ps``
would show them to every user of the machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .target import CheckTarget

#: the pytest plugin (this package) that writes the collected test ids for the progress bar
COLLECTION_PLUGIN = "monitor.services.predeploy.collection_plugin"
#: environment variables the suite's conftest reads; any inherited ones are dropped
SUITE_ENVIRONMENT = (
    "AEM_RUNTIME_URL",
    "AEM_RUNTIME_SECRET",
    "AEM_RUNTIME_TOKENS",
    "AEM_RUNTIME_MONITOR_TOKEN",
    "AEM_RUNTIME_CLOCK_SYNCED",
)
#: the whole gate takes ~20-35 s on 2 cores; this is the point where it is surely hung
FULL_TIMEOUT = 600.0
#: the quick validation takes ~1-3 s
QUICK_TIMEOUT = 120.0
#: no single test of the gate should take longer (pytest-timeout fails it with a message)
TEST_TIMEOUT = 90.0


@dataclass(frozen=True, slots=True)
class SuiteSpec:
    """Which tests a check runs, from which folder, within what time.

    ``paths`` are relative to ``root`` (pytest's working directory, where the project's
    ``pyproject.toml`` configures it); ``extra_args`` go to pytest as they are.
    """

    key: str
    title: str
    root: Path
    paths: tuple[str, ...]
    extra_args: tuple[str, ...] = ()
    timeout: float = FULL_TIMEOUT
    test_timeout: float = TEST_TIMEOUT
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def with_timeout(self, timeout: float | None) -> SuiteSpec:
        """This suite with another whole-run timeout (``None`` keeps it)."""
        if timeout is None:
            return self
        return SuiteSpec(
            self.key,
            self.title,
            self.root,
            self.paths,
            self.extra_args,
            timeout,
            min(self.test_timeout, timeout),
            self.extra_env,
        )


@dataclass(frozen=True, slots=True)
class RunFiles:
    """The files of one check run, all inside its own folder."""

    folder: Path

    @property
    def junit(self) -> Path:
        return self.folder / "junit.xml"

    @property
    def progress(self) -> Path:
        """One JSON line per test report (the suite's ``--progress-log``)."""
        return self.folder / "progress.jsonl"

    @property
    def collection(self) -> Path:
        """The collected test ids (``COLLECTION_PLUGIN``)."""
        return self.folder / "collected.jsonl"

    @property
    def output(self) -> Path:
        """pytest's terminal output, stdout and stderr."""
        return self.folder / "output.log"

    @property
    def report(self) -> Path:
        """The human-readable report (Markdown)."""
        return self.folder / "report.md"

    @property
    def verdict(self) -> Path:
        """The verdict and run record as JSON (read back when a past check is re-opened)."""
        return self.folder / "verdict.json"


@dataclass(frozen=True, slots=True)
class CheckCommand:
    """What to start: ``argv`` in ``cwd`` with ``env`` (which holds the credentials)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)
    cwd: Path

    def display(self) -> str:
        """The command line as a person would type it (it holds no credentials)."""
        return " ".join(_quote(a) for a in self.argv)


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./=:,@+" for c in arg) else repr(arg)


def suite_environment(target: CheckTarget) -> dict[str, str]:
    """The ``AEM_RUNTIME_*`` variables that point the suite at ``target``."""
    env = {"AEM_RUNTIME_URL": target.url}
    if target.secret:
        env["AEM_RUNTIME_SECRET"] = target.secret
    if target.user_tokens:
        env["AEM_RUNTIME_TOKENS"] = ",".join(target.user_tokens)
    if target.monitor_token:
        env["AEM_RUNTIME_MONITOR_TOKEN"] = target.monitor_token
    if target.kind == "embedded":
        env["AEM_RUNTIME_CLOCK_SYNCED"] = "1"  # the same machine, the same clock
    return env


def build_command(
    target: CheckTarget,
    suite: SuiteSpec,
    files: RunFiles,
    *,
    python: str,
    base_env: Mapping[str, str] | None = None,
) -> CheckCommand:
    """The pytest invocation that runs ``suite`` against ``target`` into ``files``.

    ``base_env`` is the environment to start from (the caller passes ``os.environ``);
    inherited ``AEM_RUNTIME_*`` variables are dropped so that only ``target`` is tested.
    """
    argv = (
        python,
        "-m",
        "pytest",
        *suite.paths,
        "-p",
        "no:cacheprovider",  # a check must not leave .pytest_cache behind or reorder tests
        "-p",
        COLLECTION_PLUGIN,
        f"--collection-log={files.collection}",
        f"--progress-log={files.progress}",
        f"--junitxml={files.junit}",
        f"--timeout={suite.test_timeout:g}",
        "--color=no",
        # Python's own traceback format: pytest's default one parses the failing test's
        # source with ``ast``, which on CPython 3.11.0-3.11.7 can abort the whole run
        # (INTERNALERROR "AST constructor recursion depth mismatch", CPython gh-106905)
        # when a failure's stack is deep, as an asyncio test's is; a gate must never
        # turn a NO-GO into an ERROR over how it prints one.
        "--tb=native",
        "-rfEs",
        *suite.extra_args,
    )
    env = {k: v for k, v in (base_env or {}).items() if k not in SUITE_ENVIRONMENT}
    env.update(suite_environment(target))
    env.update(suite.extra_env)
    env["PYTHONUNBUFFERED"] = "1"
    return CheckCommand(argv, env, suite.root)
