"""Where the pre-deploy check's suite is, and the Python that runs it with pytest.

The suite is ``tests/mission_critical`` in the project checkout next to the ``monitor``
package (``$AEM_CHECK_ROOT`` overrides); the interpreter is this one, unless
``$AEM_CHECK_PYTHON`` names another — and a bundled app has none. Building the command
from them is ``monitor.model.predeploy.command`` (pure).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from monitor.model.predeploy.command import FULL_TIMEOUT, QUICK_TIMEOUT, SuiteSpec

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


def missing(suite: SuiteSpec) -> list[str]:
    """Paths of ``suite`` that do not exist (a check cannot run without them)."""
    return [str(suite.root / p) for p in suite.paths if not (suite.root / p).exists()]
