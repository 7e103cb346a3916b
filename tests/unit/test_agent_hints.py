"""Agent.hint: a push hint moves the next sync to "now + spread", rate-limited, never two at once.

The Agent runs with its real APScheduler; the device behind it is a small stand-in
(the daemon's ``Device`` port) that counts syncs. The same path is shown end to end
with a real broker, Git repo and engine in tests/integration/test_fleet_push.py.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.daemon.loop import Agent
from gitops_edge.engine.idle import IdleMemo
from gitops_edge.model.config import AgentConfig, DeviceConfig, SourceConfig
from gitops_edge.model.result import SyncResult
from gitops_edge.model.status import Outcome
from tests.support.net import wait_for

HEAD = "1" * 40


class HalfRandom(random.Random):
    def random(self) -> float:
        return 0.5


class Store:
    def applied(self) -> dict[str, Any]:
        return {}

    def quarantined(self) -> dict[str, Any]:
        return {}

    def journal(self) -> list[Any]:
        return []

    def image_usage(self) -> tuple[int, int, int]:
        return 0, 0, 0

    def close(self) -> None:
        pass


class CountingDevice:
    """Every sync finds the ref at ``head``; ``gate`` (when set) holds a sync until released."""

    def __init__(self) -> None:
        self.head = HEAD
        self.syncs = 0
        self.running = 0
        self.max_running = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def open_store(self) -> Store:
        return Store()

    def reconciler(self, store: Any, *, keep_runtime: bool = False, refresh_saved_memo: bool = True) -> Any:
        device = self

        class Rec:
            idle = IdleMemo()  # the daemon reads its unchanged-poll count for /metrics
            last_idle = False

            def sync(self) -> SyncResult:
                with device._lock:
                    device.running += 1
                    device.max_running = max(device.max_running, device.running)
                device.entered.set()
                if device.gate is not None:
                    device.gate.wait(10)
                with device._lock:
                    device.running -= 1
                    device.syncs += 1
                return SyncResult(Outcome.UNCHANGED, revision=device.head)

        return Rec()

    def runtime_or_none(self, timeout: float | None = None) -> tuple[None, None]:
        return None, None

    def fleet_reporter(self, *, daemon: bool = True, on_hint: Any = None) -> None:
        return None

    def report(self, store: Any, result: SyncResult, reporter: Any = None) -> None:
        pass

    @contextmanager
    def sync_lock(self) -> Iterator[None]:
        yield


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[Agent, CountingDevice]]:
    config = AgentConfig(
        device=DeviceConfig("d"),
        source=SourceConfig(url="/r", interval_s=3600, jitter_s=0, hint_spread_s=0.2, hint_min_gap_s=600),
        state_dir=tmp_path,
    )
    device = CountingDevice()
    a = Agent(config, device)  # type: ignore[arg-type]
    a.rng = HalfRandom()
    a.hint(None, "mqtt")  # before the scheduler runs: kept for later
    assert a._deferred == (None, "mqtt") and a.scheduler.get_job("sync") is None
    a._deferred = None
    a.begin(first_in=3600)  # the regular poll, an hour away
    yield a, device
    a.stop_event.set()
    a.scheduler.shutdown(wait=False)
    assert a.failures == 0, "a sync failed or crashed: the schedule these tests read is a backoff's"


def next_in(a: Agent) -> float:
    left = a._next_run_in()
    assert left is not None
    return left


def settled(a: Agent, device: CountingDevice, syncs: int) -> bool:
    return device.syncs >= syncs and a.idle.is_set() and not a._busy and a.scheduler.get_job("sync") is not None


def test_a_flood_of_hints_is_one_sync_and_the_next_is_an_interval_away(agent: tuple[Agent, CountingDevice]) -> None:
    a, device = agent
    for i in range(300):  # forged hints, a new commit id each time
        a.hint(f"{i + 2:040x}", "mqtt")
    wait_for(lambda: settled(a, device, 1), 20, "the hinted sync")
    assert device.syncs == 1
    assert next_in(a) > 3000  # back to the interval: the flood bought one poll
    assert a.seen == frozenset({HEAD})


def test_a_hint_for_the_commit_already_seen_changes_nothing(agent: tuple[Agent, CountingDevice]) -> None:
    a, device = agent
    a.hint(None, "mqtt")
    wait_for(lambda: settled(a, device, 1), 20, "the hinted sync")
    a.hint(HEAD, "mqtt")  # e.g. the retained message again after a reconnect
    assert next_in(a) > 3000 and a.hints.due_at is None


def test_a_hint_during_a_sync_runs_after_it_never_beside_it(agent: tuple[Agent, CountingDevice]) -> None:
    a, device = agent
    a.hints.min_gap_s = 0.5
    device.gate = threading.Event()
    a.hint(None, "mqtt")
    assert device.entered.wait(20), "the hinted sync did not start"
    a.hint("2" * 40, "webhook")  # the ref moved after this sync's ls-remote
    assert a._deferred == ("2" * 40, "webhook")
    device.gate.set()
    wait_for(lambda: settled(a, device, 2), 20, "the deferred hinted sync")
    assert device.max_running == 1
    assert next_in(a) > 3000


def test_a_hint_during_a_sync_that_already_found_that_commit_is_dropped(agent: tuple[Agent, CountingDevice]) -> None:
    a, device = agent
    device.gate = threading.Event()
    a.hint(None, "mqtt")
    assert device.entered.wait(20), "the hinted sync did not start"
    a.hint(HEAD, "mqtt")  # the commit this very sync is applying
    device.gate.set()
    wait_for(lambda: settled(a, device, 1), 20, "the hinted sync")
    assert a._deferred is None and a.hints.due_at is None
    assert next_in(a) > 3000 and device.syncs == 1


def test_a_hint_before_the_first_schedule_is_served_after_it(tmp_path: Path) -> None:
    config = AgentConfig(device=DeviceConfig("d"), state_dir=tmp_path,
                         source=SourceConfig(url="/r", interval_s=3600, hint_spread_s=0.2, hint_min_gap_s=600))
    device = CountingDevice()
    a = Agent(config, device)  # type: ignore[arg-type]
    a.rng = HalfRandom()
    try:
        a.hint("2" * 40, "webhook")  # e.g. the retained refs message, as soon as MQTT connects
        a.begin()  # spread_start: the first sync would be half an hour away
        wait_for(lambda: settled(a, device, 1), 20, "the hinted first sync")
        assert next_in(a) > 3000
    finally:
        a.stop_event.set()
        a.scheduler.shutdown(wait=False)


def test_a_run_that_fires_during_a_sync_is_deferred_not_run_beside_it(agent: tuple[Agent, CountingDevice]) -> None:
    """What APScheduler does when a hinted job fires while the last run is still in its tail."""
    a, device = agent
    device.gate = threading.Event()
    first = threading.Thread(target=a._sync_once)
    first.start()
    assert device.entered.wait(20), "the first sync did not start"
    a._sync_once()  # the overlapping run returns at once...
    assert a._deferred == (None, "overlap") and device.syncs == 0
    device.gate.set()
    first.join(20)
    wait_for(lambda: settled(a, device, 2), 20, "the deferred sync")  # ...and is served after the first
    assert device.max_running == 1
