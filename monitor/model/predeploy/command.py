"""Building the pytest command of a check: a pure function of target, suite and run folder.

``build_command`` returns the argv, environment and working directory; nothing is started
here, so tests assert on exactly what would run. Credentials travel in environment
variables the suite's conftest reads (``AEM_RUNTIME_*``), never in argv, where ``ps``
would show them to every user of the machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .target import CheckTarget

#: the pytest plugin (this package) that writes the collected test ids for the progress bar
COLLECTION_PLUGIN = "monitor.model.predeploy.collection_plugin"
#: environment variables the suite's conftest reads; any inherited ones are dropped
SUITE_ENVIRONMENT = (
    "AEM_RUNTIME_URL",
    "AEM_RUNTIME_SECRET",
    "AEM_RUNTIME_TOKENS",
    "AEM_RUNTIME_MONITOR_TOKEN",
    "AEM_RUNTIME_CLOCK_SYNCED",
)
#: where the suite lives when it is not next to the ``monitor`` package
ROOT_VARIABLE = "AEM_CHECK_ROOT"
#: the Python (with the project and its test extras) that runs pytest, when not this one
PYTHON_VARIABLE = "AEM_CHECK_PYTHON"
#: why a bundled app (PyInstaller) cannot run the check on its own
BUNDLED_APP_REASON = (
    "this standalone build of the monitor includes neither pytest nor the mission-critical "
    "suite, so it cannot run the pre-deploy check by itself. Run 'agent-monitor check' from a "
    f"project checkout, or start this app with {ROOT_VARIABLE}=<checkout> and "
    f"{PYTHON_VARIABLE}=<checkout>/.venv/bin/python"
)
#: the whole gate takes ~20-35 s on 2 cores; this is the point where it is surely hung
FULL_TIMEOUT = 600.0
#: the quick validation takes ~1-3 s
QUICK_TIMEOUT = 120.0
#: no single test of the gate should take longer (pytest-timeout fails it with a message)
TEST_TIMEOUT = 90.0


def project_root(environ: Mapping[str, str] | None = None) -> Path:
    """The folder holding ``tests/mission_critical`` (``$AEM_CHECK_ROOT`` overrides)."""
    env = os.environ if environ is None else environ
    override = env.get(ROOT_VARIABLE)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3]


def suite_python(
    environ: Mapping[str, str] | None = None, *, frozen: bool | None = None
) -> str | None:
    """The interpreter that runs pytest: ``$AEM_CHECK_PYTHON``, else this process's Python.

    None in a bundled app (``frozen``, default: ``sys.frozen``): its executable is the app
    itself, and ``<app> -m pytest`` would start a second monitor instead of the suite.
    """
    env = os.environ if environ is None else environ
    override = env.get(PYTHON_VARIABLE)
    if override:
        return override
    if getattr(sys, "frozen", False) if frozen is None else frozen:
        return None
    return sys.executable


def check_unavailable(
    environ: Mapping[str, str] | None = None, *, frozen: bool | None = None
) -> str | None:
    """Why this process cannot run a check at all (None: it can), shown instead of a verdict."""
    return BUNDLED_APP_REASON if suite_python(environ, frozen=frozen) is None else None


def child_environment(environ: Mapping[str, str], *, frozen: bool | None = None) -> dict[str, str]:
    """``environ`` as a program that is not part of this app should get it.

    In a bundled app (``frozen``, default: ``sys.frozen``) PyInstaller's launcher points
    ``LD_LIBRARY_PATH`` and Qt's plugin paths into the bundle, for the app itself; another
    Python (the suite's) would then load the bundle's libssl or libsqlite instead of the ones
    it was built against. The launcher keeps the original in ``LD_LIBRARY_PATH_ORIG``.
    """
    env = dict(environ)
    if not (getattr(sys, "frozen", False) if frozen is None else frozen):
        return env
    original = env.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is None:
        env.pop("LD_LIBRARY_PATH", None)
    else:
        env["LD_LIBRARY_PATH"] = original
    for name in [n for n in env if n.startswith("_PYI_")] + ["QT_PLUGIN_PATH", "QML2_IMPORT_PATH"]:
        env.pop(name, None)
    return env


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

    def missing(self) -> list[str]:
        """Paths of this suite that do not exist (a check cannot run without them)."""
        return [str(self.root / p) for p in self.paths if not (self.root / p).exists()]


def full_suite(root: Path | None = None) -> SuiteSpec:
    """The whole deployment gate, ``tests/mission_critical/``."""
    return SuiteSpec(
        "full",
        "Pre-deploy check",
        root or project_root(),
        ("tests/mission_critical",),
        timeout=FULL_TIMEOUT,
    )


def quick_suite(root: Path | None = None) -> SuiteSpec:
    """The quick validation, ``tests/mission_critical/test_final_validation.py``."""
    return SuiteSpec(
        "quick",
        "Quick validation",
        root or project_root(),
        ("tests/mission_critical/test_final_validation.py",),
        timeout=QUICK_TIMEOUT,
        test_timeout=60.0,
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
