"""The deployment gate against a cluster.

The mission-critical suite, run as CI runs it (``python -m pytest tests/mission_critical
--cluster 2``) in a real subprocess against two in-process nodes sharing a real Redis, must
pass; and the suite's target really spreads a user's connections over the nodes, and refuses
URLs that are not the nodes of one runtime.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.embedded import EmbeddedRuntime
from tests.conftest import ROOT, seconds, test_config
from tests.mission_critical.cluster import InProcessCluster
from tests.mission_critical.target import RuntimeTarget, metric_total, parse_urls

#: how long the whole suite may take against the cluster (~45-60 s here)
GATE_TIMEOUT = 600
#: ``3 failed, 78 passed, 1 skipped in 42.00s (0:00:42)``: the counts of pytest's summary
COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b")
#: the suite's test that records which nodes a user's connections landed on
SPREAD_PROPERTY = "test_a_users_connections_are_spread_over_every_node::nodes"


def summary_counts(stdout: str) -> dict[str, int]:
    """``{"passed": 78, "failed": 3, ...}`` from the last line of a ``pytest -q`` run."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    counts = dict.fromkeys(("passed", "failed", "error", "skipped", "xfailed", "xpassed"), 0)
    for number, kind in COUNT.findall(last):
        counts["error" if kind.startswith("error") else kind] = int(number)
    return counts


def failure_digest(stdout: str, limit: int = 60) -> str:
    """What a failed gate run said: its first assertion lines and its short summary."""
    lines = stdout.splitlines()
    errors = [line for line in lines if line.startswith("E  ")][:limit]
    marker = next((i for i, line in enumerate(lines) if "short test summary info" in line), None)
    summary = lines[marker:] if marker is not None else lines[-limit:]
    return "\n".join([*errors, "", *summary])


def suite_environment(redis_url: str) -> dict[str, str]:
    """This environment without anything that points the suite elsewhere, and the Redis."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AEM_RUNTIME_") and k != "AEM_CLUSTER"
    }
    env["AEM_REDIS_URL"] = redis_url
    return env


@pytest.mark.slow
@pytest.mark.timeout(int(seconds(GATE_TIMEOUT + 60)))
def test_the_gate_passes_against_a_two_node_cluster(redis_url: str, tmp_path: Path) -> None:
    junit = tmp_path / "cluster-gate.xml"
    command = [
        sys.executable, "-m", "pytest", "tests/mission_critical", "--cluster", "2",
        "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=suite_environment(redis_url),
        capture_output=True,
        text=True,
        timeout=seconds(GATE_TIMEOUT),
        check=False,
    )
    counts = summary_counts(result.stdout)
    assert result.returncode == 0 and counts["passed"] and not counts["failed"], (
        f"the mission-critical suite against a two-node cluster exited with "
        f"{result.returncode} ({' '.join(command[2:])}):\n{failure_digest(result.stdout)}\n"
        f"{result.stderr[-2000:]}"
    )
    assert not counts["error"], failure_digest(result.stdout)
    # an in-process cluster offers everything the suite needs: nothing may be skipped
    assert not counts["skipped"], failure_digest(result.stdout)
    # ... and it was a cluster: a user's connections landed on both nodes
    properties = {
        p.get("name", ""): p.get("value") for p in ET.parse(junit).getroot().iter("property")
    }
    spread = [value for name, value in properties.items() if name.endswith(SPREAD_PROPERTY)]
    assert spread == ["mc-node0,mc-node1"], (
        f"the suite's spread test recorded {spread} (expected both nodes of the cluster)"
    )


# --- the target's spreading, directly -----------------------------------------------


@pytest.fixture
def cluster(redis_url: str) -> Iterator[InProcessCluster]:
    with InProcessCluster(2, redis_url) as started:
        yield started


@pytest.fixture
def cluster_target(cluster: InProcessCluster) -> RuntimeTarget:
    return RuntimeTarget(cluster.urls, secret=cluster.secret, embedded=cluster.nodes)


async def ws_connections(target: RuntimeTarget) -> list[float]:
    """``aem_connections{endpoint="ws"}`` of each node, from its own ``/metrics``."""
    texts = await target.fetch_metrics_by_node()
    return [metric_total(text, "aem_connections", endpoint="ws") for text in texts]


async def test_a_users_connections_land_on_both_nodes(cluster_target: RuntimeTarget) -> None:
    target = cluster_target
    assert target.cluster and len(target.nodes) == 2
    target.begin_test("tests/test_cluster_gate.py::spread")
    user = target.new_user("spread")
    monitor = await target.connect(monitor=True)
    first = await target.connect(user)
    second = await target.connect(user)
    try:
        acks = [c.ack for c in (monitor, first, second)]
        assert all(ack is not None for ack in acks)
        nodes = [ack.extra.get("node_id") if ack else None for ack in acks]
        monitor_node, first_node, second_node = nodes
        assert {first_node, second_node} == {"mc-node0", "mc-node1"}, (
            f"both connections of {user.user_id} landed on {first_node!r} and "
            f"{second_node!r}: the target does not spread a user's connections over the "
            f"cluster's nodes\n{target.placement()}"
        )
        assert monitor_node != first_node, (
            f"the monitor and the user it watches both started on {monitor_node!r}: each new "
            f"user or monitor must start on the next node\n{target.placement()}"
        )
        # each node counts one connection of the user: the acks do not lie about where
        assert await ws_connections(target) == [1.0, 1.0], target.placement()
        # and the run one connection starts reaches the other, on the other node
        run_id = await first.start_run("What is 6*7?", "calculator")
        events = await second.wait_run(run_id, seconds(15))
        assert [e.event_id for e in events] == [
            e.event_id for e in await first.wait_run(run_id, seconds(15))
        ]
    finally:
        for client in (monitor, first, second):
            await client.close()


def test_each_test_starts_on_a_node_fixed_by_its_id(cluster_target: RuntimeTarget) -> None:
    target = cluster_target
    placements = []
    for _ in range(2):
        target.begin_test("tests/mission_critical/test_x.py::test_y")
        placements.append([target.url_for("alice"), target.url_for("alice"), target.url_for()])
    assert placements[0] == placements[1], "the same test landed on other nodes when rerun"
    first, again, monitor = placements[0]
    assert first != again and monitor == again


# --- URLs that are not one runtime ----------------------------------------------------


def test_urls_of_two_runtimes_are_a_usage_error(
    cluster: InProcessCluster, redis_url: str, broker_namespace: str
) -> None:
    config = test_config(
        secret=cluster.secret, broker=redis_url, broker_namespace=broker_namespace, node_id="x"
    )
    with EmbeddedRuntime(config) as stranger, pytest.raises(pytest.UsageError) as refused:
        odd = stranger.url
        RuntimeTarget([*cluster.urls, odd], secret=cluster.secret)
    message = str(refused.value)
    assert "these URLs are not one runtime" in message
    assert f"{odd} (node x) has instance_id" in message, message
    assert message.count("has instance_id") == 1, message


def test_one_node_given_twice_is_a_usage_error(cluster: InProcessCluster) -> None:
    url = cluster.urls[0]
    alias = url.replace("127.0.0.1", "localhost")
    with pytest.raises(pytest.UsageError, match="are one node"):
        RuntimeTarget([url, alias], secret=cluster.secret)
    with pytest.raises(pytest.UsageError, match="given twice"):
        RuntimeTarget([url, url + "/"], secret=cluster.secret)


def test_runtime_urls_are_repeated_or_comma_separated() -> None:
    assert parse_urls("ws://a:1, ws://b:2,") == ["ws://a:1", "ws://b:2"]
    assert parse_urls(["ws://a:1/", "ws://b:2,ws://c:3"]) == ["ws://a:1", "ws://b:2", "ws://c:3"]
    assert parse_urls([]) == []
