"""Fixtures of the deployment gate.

The default target is an in-process runtime (``EmbeddedRuntime``: its own thread and event
loop, 127.0.0.1 port 0, a fresh secret, client faults allowed). ``--cluster N`` makes it N
in-process nodes of one cluster sharing a Redis; ``--runtime-url`` points the same tests at
a running runtime instead, e.g. staging, or at the nodes of a running cluster (several
URLs). On a cluster, each test's connections are spread over the nodes
(``RuntimeTarget.url_for``). Every test reaches the target over real WebSockets; the fixture
names (``target``, ``open_client``) differ from the root conftest's (``runtime``,
``connect``), which start a runtime inside the test's own loop.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from runtime.client import AgentClient
from runtime.embedded import EmbeddedRuntime
from tests.conftest import seconds, test_config
from tests.mission_critical.cluster import InProcessCluster
from tests.mission_critical.target import (
    RuntimeTarget,
    SuiteClient,
    User,
    parse_tokens,
    parse_urls,
)

HERE = Path(__file__).resolve().parent

#: the marker of every test that exercises the runtime under test (it uses the ``target``
#: fixture, directly or through another fixture); registered in pyproject.toml. The check's
#: verdict (monitor/model/predeploy/verdict.py) gives no GO unless one of them passed: a run
#: whose target tests all skipped tested this machine, not the runtime.
TOUCHES_TARGET = "touches_target"
#: what ``record_measurement`` recorded for a test: ``(name, value)``, in order
MEASUREMENTS = pytest.StashKey[list[tuple[str, object]]]()
#: the target a test used, for the placement of its connections in a failure report
USED_TARGET = pytest.StashKey[RuntimeTarget]()

#: option -> environment variable it falls back to
ENVIRONMENT = {
    "runtime_url": "AEM_RUNTIME_URL",
    "cluster": "AEM_CLUSTER",
    "runtime_secret": "AEM_RUNTIME_SECRET",
    "runtime_token": "AEM_RUNTIME_TOKENS",
    "runtime_monitor_token": "AEM_RUNTIME_MONITOR_TOKEN",
    "runtime_clock_synced": "AEM_RUNTIME_CLOCK_SYNCED",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mission_critical", "mission-critical suite: which runtime to test")
    group.addoption(
        "--runtime-url",
        action="append",
        default=[],
        help="test a running runtime at ws://HOST:PORT instead of an in-process one; several "
        "URLs (repeated, or comma-separated) are the nodes of one cluster, and each test's "
        "connections are spread over them (env AEM_RUNTIME_URL, comma-separated)",
    )
    group.addoption(
        "--cluster",
        metavar="N",
        help="test an in-process cluster of N nodes sharing a Redis (AEM_REDIS_URL, else a "
        "private redis-server), spreading each test's connections over them; 1 (default) "
        "is one in-process runtime without Redis (env AEM_CLUSTER)",
    )
    group.addoption(
        "--runtime-secret",
        help="the target's token secret, to mint a fresh user per test (env AEM_RUNTIME_SECRET)",
    )
    group.addoption(
        "--runtime-token",
        action="append",
        default=[],
        help="a user token, as user=TOKEN or a bare TOKEN; repeatable "
        "(env AEM_RUNTIME_TOKENS, comma-separated)",
    )
    group.addoption(
        "--runtime-monitor-token",
        help="a token with role monitor for /monitor (env AEM_RUNTIME_MONITOR_TOKEN)",
    )
    group.addoption(
        "--runtime-clock-synced",
        action="store_true",
        default=None,
        help="the target's clock is synchronised with this machine's, so emit->receive "
        "latency can be asserted (env AEM_RUNTIME_CLOCK_SYNCED=1)",
    )
    group.addoption(
        "--progress-log",
        metavar="PATH",
        help="write one JSON line per test report as it happens (pytest-reportlog format), "
        "for a GUI showing live progress",
    )


def _option(config: pytest.Config, name: str) -> Any:
    """A suite option, else its environment variable.

    ``default=None``: when only tests/conftest.py is an initial conftest (``python -m pytest``
    from the root), these options were never registered and only the environment applies.
    """
    value = config.getoption(name, default=None)
    if value in (None, []):
        value = os.environ.get(ENVIRONMENT[name]) or None
        if value is not None and name in ("runtime_token", "runtime_url"):
            value = [value]
        if value is not None and name == "runtime_clock_synced":
            value = value.strip().lower() in {"1", "true", "yes", "on"}
    return value


def _cluster_size(config: pytest.Config) -> int:
    raw = _option(config, "cluster")
    if raw is None:
        return 1
    try:
        size = int(str(raw).strip())
    except ValueError:
        size = 0
    if size < 1:
        raise pytest.UsageError(
            f"--cluster / AEM_CLUSTER must be a number of nodes >= 1, got {raw!r}"
        )
    return size


# --- every test here is part of the gate ---------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse to run a gate that contains tests not marked ``mission_critical``; mark the
    tests that use the target ``touches_target``.

    The marker is set here rather than by hand so that no test can be forgotten: whatever
    requests ``target`` (itself, or through ``open_client`` or any fixture depending on it)
    is in ``item.fixturenames``, the closure of the fixtures it uses. It reaches each
    report's ``keywords``, so the progress log tells the verdict which tests touched the
    runtime.
    """
    ours = [item for item in items if HERE in item.path.parents]
    unmarked = [item.nodeid for item in ours if item.get_closest_marker("mission_critical") is None]
    if unmarked:
        raise pytest.UsageError(
            "every test under tests/mission_critical/ must carry the mission_critical marker "
            "(pytestmark = [pytest.mark.mission_critical, pytest.mark.critical]); unmarked: "
            + ", ".join(unmarked)
        )
    for item in ours:
        if "target" in getattr(item, "fixturenames", ()):
            item.add_marker(TOUCHES_TARGET)


# --- live progress for a GUI ---------------------------------------------------------


class ProgressLog:
    """Writes each test report as one JSON line, flushed at once (pytest-reportlog format).

    A test's measurements (``record_measurement``) are written as the report's
    ``user_properties``, where the monitor reads them, although they are not on the report
    object: pytest's JUnit XML writes a report's user properties inside ``<testcase>``, which
    the xunit2 schema forbids, so ``record_measurement`` keeps them in the item's stash.
    """

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("w", encoding="utf-8", buffering=1)
        #: node id -> its measurements as of its latest report (made just before it is logged)
        self._measured: dict[str, list[tuple[str, object]]] = {}

    def _write(self, data: dict[str, Any]) -> None:
        self._file.write(json.dumps(data, default=str) + "\n")

    def pytest_sessionstart(self) -> None:
        self._write({"pytest_version": pytest.__version__, "$report_type": "SessionStart"})

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(
                self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
            )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        measured = item.stash.get(MEASUREMENTS, [])
        if measured:
            self._measured[report.nodeid] = list(measured)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        measured = (
            self._measured.pop(report.nodeid, [])
            if report.when == "teardown"
            else self._measured.get(report.nodeid, [])
        )
        if measured:
            data["user_properties"] = [*data.get("user_properties", []), *measured]
        self._write(data)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self._write({"exitstatus": int(exitstatus), "$report_type": "SessionFinish"})
        self._file.close()


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("progress_log", default=None)
    if path:
        config.pluginmanager.register(ProgressLog(config, Path(path)), "mission-critical-progress")


# --- the target ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[RuntimeTarget]:
    """The runtime under test, for the whole session."""
    config = request.config
    urls = parse_urls(_option(config, "runtime_url") or [])
    size = _cluster_size(config)
    if urls:
        if size > 1:
            raise pytest.UsageError(
                "--cluster starts an in-process cluster: give it or --runtime-url, not both "
                "(several --runtime-url are the nodes of a running cluster)"
            )
        yield RuntimeTarget(
            urls,
            secret=_option(config, "runtime_secret"),
            tokens=parse_tokens(_option(config, "runtime_token") or []),
            monitor_token=_option(config, "runtime_monitor_token"),
            clock_synced=bool(_option(config, "runtime_clock_synced")),
        )
        return
    if size > 1:
        # each node: port 0, pace 0.02, client faults on; one secret, one fresh namespace
        with InProcessCluster(size) as cluster:
            yield RuntimeTarget(cluster.urls, secret=cluster.secret, embedded=cluster.nodes)
        return
    runtime_config = test_config()  # port 0, fresh secret, pace 0.02, client faults on
    with EmbeddedRuntime(runtime_config) as embedded:
        yield RuntimeTarget(embedded.url, secret=runtime_config.secret, embedded=embedded)


@pytest.fixture(autouse=True)
def _spread_connections(request: pytest.FixtureRequest) -> None:
    """A test that uses the target spreads its connections over the nodes afresh, from a
    node fixed by its id (on one node, every connection goes there anyway)."""
    if "target" in request.fixturenames:
        target: RuntimeTarget = request.getfixturevalue("target")
        target.begin_test(request.node.nodeid)
        request.node.stash[USED_TARGET] = target


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test on a cluster says which node each of its connections was on."""
    report = yield
    target = item.stash.get(USED_TARGET, None)
    if report.failed and target is not None and target.cluster:
        report.sections.append(("connections on the cluster's nodes", target.placement()))
    return report


ClientOpener = Callable[..., Awaitable[SuiteClient]]
#: how long a suite client waits for a run's agent_started (before AEM_TEST_TIMEOUT_FACTOR)
START_TIMEOUT = 3.0


@pytest.fixture
async def open_client(target: RuntimeTarget) -> AsyncIterator[ClientOpener]:
    """Open real connections to the target; all are closed after the test.

    ``await open_client(user)`` for a user's ``/ws`` connection (``after_seq=``,
    ``token_in_query=`` … go to ``AgentClient.connect``); ``await open_client(monitor=True)``
    for the observer stream.
    """
    opened: list[AgentClient] = []

    async def open_one(
        user: User | None = None, *, monitor: bool = False, **kwargs: Any
    ) -> SuiteClient:
        if monitor:
            kwargs.setdefault("max_queue", None)  # the observer stream is busy; never stall it
        kwargs.setdefault("ack_timeout", seconds(10))
        client = await target.connect(user, monitor=monitor, **kwargs)
        # a malformed frame or another user's event fails the test at once, named
        client.strict = True
        # agent_started follows a user_message within milliseconds: a run that has not
        # started by then will not, and the test should say so now, not in 10 s
        client.start_timeout = seconds(START_TIMEOUT)
        opened.append(client)
        return client

    yield open_one
    for client in opened:
        await client.close()


@pytest.fixture
def record_measurement(
    request: pytest.FixtureRequest, record_testsuite_property: Callable[[str, object], None]
) -> Callable[[str, object], None]:
    """Attach a measured value (events/s, latency, memory …) to the test.

    It lands in ``--progress-log`` as a user property of the test's reports (the monitor
    shows it with the test) and in the JUnit XML as a ``<testsuite>`` property named
    ``<test node id>::<name>``. Not in ``request.node.user_properties``: pytest's JUnit XML
    writes those as ``<properties>`` inside ``<testcase>``, which the xunit2 schema (pytest's
    default ``junit_family``) forbids; ``record_testsuite_property`` is pytest's public way
    to record properties in an xunit2 file.
    """
    node = request.node

    def record(name: str, value: object) -> None:
        node.stash.setdefault(MEASUREMENTS, []).append((name, value))
        record_testsuite_property(f"{node.nodeid}::{name}", value)

    return record
