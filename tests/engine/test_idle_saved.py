"""The idle memo kept in the store (engine/idle.py ``SavedMemo``, ``quick_sync``): a fresh process
answers a poll where nothing moved after one container list, and only then; the memo is written
when what it is based on changes, never by an idle daemon."""

from __future__ import annotations

import json

import pytest

from gitops_edge.engine.idle import SAVED_KEY, SavedMemo, quick_sync
from gitops_edge.engine.reconcile import Reconciler
from gitops_edge.errors import DesiredStateError
from gitops_edge.model.result import SyncResult
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from tests.engine.conftest import REV1, REV2, REV3, Bench, two_services


class Device:
    """One simulated device whose processes keep the idle memo in its store."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.key = "config-1"  # what engine.idle knows of the device side: the adapter's digest

    def process(self, *, daemon: bool = False) -> Reconciler:
        b = self.bench
        return Reconciler(b.config, b.source, b.runtime, b.store, b.load, clock=b.clock,
                          device_key=lambda: self.key, refresh_saved_memo=not daemon)

    def quick(self) -> SyncResult | None:
        b = self.bench
        return quick_sync(b.store, b.source, b.runtime, lambda: self.key, b.clock.now().timestamp(),
                          b.config.retention.full_check_s)

    def saved(self) -> SavedMemo:
        memo = SavedMemo.from_json(self.bench.store.kv.get(SAVED_KEY))
        assert memo is not None
        return memo


@pytest.fixture
def device(bench: Bench) -> Device:
    bench.commit(REV1, two_services("s", "app:v1"))
    d = Device(bench)
    assert d.process().sync().outcome is Outcome.APPLIED  # an update arms nothing
    assert SAVED_KEY not in bench.store.kv
    assert d.process().sync().step is Step.PLAN  # the first no-op sync is a full one: it keeps the memo
    return d


def _ops_since(bench: Bench, n: int) -> set[str]:
    return {op for op, _ in bench.runtime.calls[n:]}


def test_a_fresh_process_answers_after_one_container_list_and_writes_nothing(device: Device) -> None:
    b = device.bench
    calls, kv, rows, writes = len(b.runtime.calls), dict(b.store.kv), len(b.store.syncs), b.store.writes
    for _ in range(3):
        b.clock.advance(5)
        result = device.quick()
        assert result is not None
        assert (result.outcome, result.step, result.revision) == (Outcome.UNCHANGED, Step.FETCH, REV1)
    assert _ops_since(b, calls) == {"fingerprint"}  # no observe, no image resolution
    assert (b.store.kv, len(b.store.syncs), b.store.writes) == (kv, rows, writes)


def test_everything_the_memo_is_based_on_makes_the_next_process_run_the_full_sync(device: Device) -> None:
    b = device.bench

    def moved(change: object = None) -> None:
        """The quick answer is refused; the full sync then runs, and a fresh memo answers again."""
        assert device.quick() is None
        assert device.process().sync().step in (Step.PLAN, Step.COMMIT)
        if device.quick() is None:  # an update (COMMIT) arms nothing: the next no-op sync does
            assert device.process().sync().step is Step.PLAN
        assert device.quick() is not None, change

    removed = next(c for c in b.runtime.containers.values() if c.service == "web")
    del b.runtime.containers[removed.id]  # a container removed by hand
    moved("removed")
    b.assert_converged(two_services("s", "app:v1"), REV1)
    next(c for c in b.runtime.containers.values() if c.service == "web").status = "exited"  # stopped by hand
    moved("stopped")
    b.assert_converged(two_services("s", "app:v1"), REV1)
    device.key = "config-2"  # the agent config, a file it names or the secrets directory changed
    moved("device")
    b.store.suspended_rows["s"] = "maintenance"  # an operator's command
    moved("held")
    del b.store.suspended_rows["s"]
    moved("resumed")
    b.commit(REV2, two_services("s", "app:v2"))  # the commit moved
    moved("commit")
    b.bad_commit(REV3, DesiredStateError("s/compose.yaml:3: services.web: no image"))
    assert device.process().sync().outcome is Outcome.ERROR  # a failed sync empties the memo ...
    assert b.store.kv[SAVED_KEY] == ""
    b.source.point(REV2)  # ... so that the ref moving back is answered by a full sync (READY again)
    moved("failed")
    b.assert_converged(two_services("s", "app:v2"), REV2)
    assert device.saved().revision == REV2


def test_an_old_memo_a_clock_set_back_or_an_unfinished_switch_is_not_trusted(device: Device) -> None:
    b = device.bench
    b.clock.advance(b.config.retention.full_check_s + 1)  # the safety net: a full sync this often
    assert device.quick() is None
    device.process().sync()  # a one-shot process refreshes the memo's time
    assert device.quick() is not None
    b.store.kv[SAVED_KEY] = json.dumps({**json.loads(b.store.kv[SAVED_KEY]), "at": 1e12})  # from the future
    assert device.quick() is None
    device.process().sync()
    b.store.journal_rows["s"] = (REV1, "stopped-old", "{}")  # a crash in the middle of a switch
    assert device.quick() is None
    b.store.journal_rows.clear()
    assert device.quick() is not None
    b.store.start_sync(b.clock.now().timestamp())  # a process died in a sync, before its journal
    assert device.quick() is None  # (and its history row is closed as interrupted)
    assert device.quick() is not None
    good = json.loads(b.store.kv[SAVED_KEY])
    for junk in ("", "not json", "{}", "[]", json.dumps({**good, "outcome": "nope"}), json.dumps({**good, "at": "x"}),
                 json.dumps({**good, "stacks": [1]}), json.dumps({**good, "extra": 1})):
        b.store.kv[SAVED_KEY] = junk  # a memo this version cannot read
        assert device.quick() is None


def test_an_idle_daemon_never_rewrites_the_memo(device: Device) -> None:
    b = device.bench
    daemon = device.process(daemon=True)
    daemon.sync()
    stored = b.store.kv[SAVED_KEY]
    for _ in range(3):
        b.clock.advance(b.config.retention.full_check_s + 1)
        assert daemon.sync().step is Step.PLAN  # the safety net's full sync re-arms the memo in memory
        assert daemon.sync().step is Step.FETCH
    assert b.store.kv[SAVED_KEY] == stored  # same basis: not written again
    b.store.suspended_rows["s"] = "maintenance"
    daemon.sync()
    assert b.store.kv[SAVED_KEY] != stored  # a new basis is written, once
