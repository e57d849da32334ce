"""``DemoTraffic``: what the simulated users ask, and that they keep a runtime busy — with
findings to show — whatever the runtime does."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from monitor.model.demo_script import CHAOS_FAULTS, PROMPTS, FaultMix, choose_faults
from monitor.services.demo import DemoTraffic
from runtime.agents.catalog import build_default_registry
from runtime.faults import FaultConfig
from tests.monitor.model.conftest import RuntimeStarter, StopAfter, make_ingest, wait_until

QUICK = (0.05, 0.2)  # seconds between a user's messages in these tests


def test_every_prompt_names_a_real_agent_and_every_fault_is_valid() -> None:
    agents = set(build_default_registry().agent_names)
    assert {p.agent for p in PROMPTS if p.agent is not None} <= agents
    assert {p.agent for p in PROMPTS} >= {None, "calculator", "researcher", "data_analyst"}
    rng = random.Random(0)
    for _ in range(500):
        _, faults = choose_faults(rng, FaultMix(chaos=0.5, agent_crash=0.25, tool_failure=0.25))
        assert faults is not None
        FaultConfig().merged(faults)  # what the runtime does with options.faults


def test_faults_come_in_the_configured_shares() -> None:
    rng = random.Random(11)
    kinds = Counter(choose_faults(rng, FaultMix())[0] for _ in range(20_000))
    share = {kind: n / 20_000 for kind, n in kinds.items()}
    assert share["tool_failure"] == pytest.approx(0.15, abs=0.01)
    assert share["agent_crash"] == pytest.approx(0.05, abs=0.01)
    chaos = sum(share[next(iter(c))] for c in CHAOS_FAULTS)
    assert chaos == pytest.approx(0.04, abs=0.01)
    assert all(share[next(iter(c))] > 0 for c in CHAOS_FAULTS)  # every kind shows up
    assert share["none"] == pytest.approx(0.76, abs=0.015)


def test_a_seed_repeats_the_same_choices() -> None:
    def draws(seed: int) -> list[tuple[str, object]]:
        rng = random.Random(seed)
        return [choose_faults(rng, FaultMix(chaos=0.3)) for _ in range(100)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)


def test_shares_must_make_sense() -> None:
    with pytest.raises(ValueError):
        FaultMix(chaos=0.6, agent_crash=0.3, tool_failure=0.2)
    with pytest.raises(ValueError):
        FaultMix(chaos=-0.1)


def test_demo_users_keep_the_runtime_busy_and_findings_appear(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    session = make_ingest(stop_after, runtime).session
    demo = stop_after(
        DemoTraffic(
            runtime.url,
            runtime.issue_token,
            users=4,
            seed=3,
            interval=QUICK,
            fault_mix=FaultMix(chaos=0.4, agent_crash=0.1, tool_failure=0.2),
        ).start()
    )
    store = session.store
    wait_until(lambda: len(store.users) == 4 and len(store.runs) >= 12, 10, "runs of 4 users")
    wait_until(lambda: store.findings_total > 0, 10, "a finding")
    stats = demo.stats()
    assert stats.users_connected == 4
    assert stats.messages_sent >= 12
    assert stats.connection_errors == 0
    assert set(store.users) == {"ana", "ben", "chen", "dara"}
    demo.stop()
    assert not demo.running
    assert demo.stats().users_connected == 0


def test_a_runtime_without_client_faults_only_loses_the_faults(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime(allow_client_faults=False)
    session = make_ingest(stop_after, runtime).session
    demo = stop_after(
        DemoTraffic(
            runtime.url,
            runtime.issue_token,
            users=2,
            seed=1,
            interval=QUICK,
            fault_mix=FaultMix(chaos=0.0, agent_crash=0.5, tool_failure=0.5),
        ).start()
    )
    wait_until(lambda: demo.stats().refused >= 1, 10, "a refused message")
    assert "faults_disabled" in demo.stats().last_error
    runs = len(session.store.runs)
    wait_until(lambda: len(session.store.runs) >= runs + 4, 10, "runs without faults")
    assert demo.running


def test_no_runtime_is_logged_and_retried_not_fatal(
    start_runtime: RuntimeStarter, stop_after: StopAfter
) -> None:
    runtime = start_runtime()
    url = runtime.url
    token_for = runtime.issue_token
    tokens = {user: token_for(user) for user in ("ana", "ben")}
    runtime.stop()
    demo = stop_after(DemoTraffic(url, tokens.__getitem__, users=2, interval=QUICK).start())
    wait_until(lambda: demo.stats().connection_errors >= 3, 10, "failed attempts")
    assert "cannot connect" in demo.stats().last_error
    assert demo.running
