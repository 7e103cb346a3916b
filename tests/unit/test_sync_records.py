"""The step of each sync, stored in SQLite and shown by `history --json` and `status --json`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.cli.main import main
from gitops_edge.model.config import AgentConfig, DeviceConfig, SourceConfig
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step
from gitops_edge.report.status_view import device_status

OLD_SYNCS = """CREATE TABLE syncs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, finished_at REAL, revision TEXT,
  outcome TEXT, reason TEXT NOT NULL DEFAULT '', actions TEXT NOT NULL DEFAULT '[]')"""


def test_a_database_of_an_older_agent_gains_the_step_column(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute(OLD_SYNCS)
    db.execute("INSERT INTO syncs (started_at, finished_at, revision, outcome) VALUES (1, 2, 'abc', 'applied')")
    db.commit()
    db.close()

    store = StateStore(tmp_path)
    [old] = store.history()
    assert (old.revision, old.outcome, old.step) == ("abc", Outcome.APPLIED, None)
    sid = store.start_sync()
    store.finish_sync(sid, revision="def", outcome=Outcome.ROLLED_BACK, reason="x", actions=[], step=Step.GATE)
    assert store.last_sync() is not None and store.last_sync().step is Step.GATE  # type: ignore[union-attr]
    store.close()
    StateStore(tmp_path).close()  # opening again: already migrated, nothing to do


def test_history_and_status_show_the_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    store = StateStore(state)
    sid = store.start_sync()
    store.finish_sync(sid, revision="r" * 40, outcome=Outcome.REFUSED, reason="no", actions=[], step=Step.SECURITY)
    config = AgentConfig(DeviceConfig("d1"), SourceConfig(url=str(tmp_path / "repo")), state_dir=state)
    assert device_status(config, store, None)["last_sync"]["step"] == "security"
    store.close()

    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"device: {{id: d1}}\nsource: {{url: '{tmp_path / 'repo'}'}}\nstate_dir: {state}\n")
    assert main(["--config", str(cfg), "history", "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert (record["step"], record["outcome"]) == ("security", "refused")
