"""The SQLite store's part of issue 11: per-stack outcomes, evidence with the sync, no phantom rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gitops_edge.adapters.store.sqlite import INTERRUPTED, StateStore
from gitops_edge.model.condition import Reason, StackOutcome
from gitops_edge.model.evidence import Evidence
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step


def test_a_sync_cut_short_is_interrupted_not_running_forever(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.start_sync()  # the agent crashed during this one
    second = store.start_sync()
    store.finish_sync(second, revision="r", outcome=Outcome.APPLIED, reason="", actions=[])
    new, old = store.history()
    assert new.outcome is Outcome.APPLIED
    assert (old.outcome, old.reason) == (Outcome.ERROR, INTERRUPTED) and old.finished_at is not None


def test_evidence_is_kept_with_the_sync_and_outcomes_per_stack(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    ev = Evidence("web", "s-web-1", 3, "", ("starting", "config error"))
    sid = store.start_sync()
    store.finish_sync(sid, revision="r", outcome=Outcome.ROLLED_BACK, reason="x", actions=["recreate s/web"],
                      step=Step.GATE, evidence=[ev])
    assert store.history()[0].evidence == (ev,)

    o = StackOutcome("s", Outcome.ROLLED_BACK, Reason.ROLLED_BACK, "web failed", "r", Step.GATE, 1.0, ev)
    store.record_stack_outcome(o)
    store.quarantine("s", "r", "web failed")
    store.stop_automation("s", "x")
    assert StateStore(tmp_path).stack_outcomes() == {"s": o}

    store.forget_stack("s")  # the stack left Git: nothing of it remains
    assert (store.stack_outcomes(), store.quarantined(), store.stopped(), store.applied()) == ({}, {}, {}, {})


def test_an_older_database_gains_the_evidence_column(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("CREATE TABLE syncs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, "
               "finished_at REAL, revision TEXT, outcome TEXT, reason TEXT NOT NULL DEFAULT '', "
               "actions TEXT NOT NULL DEFAULT '[]')")
    db.execute("INSERT INTO syncs (started_at, finished_at, outcome) VALUES (1, 2, 'applied')")
    db.commit()
    db.close()
    [old] = StateStore(tmp_path).history()
    assert (old.outcome, old.step, old.evidence) == (Outcome.APPLIED, None, ())


def test_closing_interrupted_rows_writes_nothing_when_none_is_open(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    sid = store.start_sync()
    store.finish_sync(sid, revision="r", outcome=Outcome.APPLIED, reason="", actions=[])
    before = store._db.total_changes
    assert store.close_interrupted() == 0
    assert store._db.total_changes == before
    store.start_sync()  # a process died during this one
    assert StateStore(tmp_path).close_interrupted() == 1
    assert StateStore(tmp_path).history()[0].reason == INTERRUPTED
