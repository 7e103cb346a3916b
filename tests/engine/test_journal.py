"""The typed journal and its stored form, and one spelling of the steps everywhere."""

from __future__ import annotations

import re
from pathlib import Path

from gitops_edge.model.journal import Journal, KeptContainer, Phase
from gitops_edge.model.step import Step, step_or_none

README = Path(__file__).resolve().parents[2] / "README.md"

# A journal exactly as agents before the typed journal wrote it (the `data` column).
STORED = {
    "kept": [
        {"id": "c1", "name": "s-db-1", "service": "db", "restart": "unless-stopped", "was_running": True},
        {"id": "c2", "name": "s-web-1", "service": "web", "restart": "always", "was_running": True,
         "running": True},
    ],
    "created": ["n1"],
    "creating": ["db", "web"],
    "failure": "service web failed the health gate: exited with code 1",
}


def test_stored_journal_reads_and_writes_back_unchanged() -> None:
    j = Journal.from_data("s", "r" * 40, "rolling-back", STORED)
    assert j.phase is Phase.ROLLING_BACK
    assert j.kept[1] == KeptContainer("c2", "s-web-1", "web", "always", was_running=True, running=True)
    assert j.created == ("n1",) and j.creating == ("db", "web")
    assert j.to_data() == STORED


def test_minimal_journal_has_unknown_creating_and_no_failure() -> None:
    j = Journal.from_data("s", "r", "switching", {"kept": [], "created": []})
    assert j.creating is None and j.failure == ""
    assert j.to_data() == {"kept": [], "created": []}


def test_updates_make_new_records() -> None:
    j = Journal("s", "r", creating=("web",))
    k = KeptContainer("c1", "s-web-1", "web", "no", was_running=True, running=True)
    j2 = j.keep(k).create("n1")
    assert j.kept == () and j.created == ()
    assert j2.stopped("c1").kept == (KeptContainer("c1", "s-web-1", "web", "no", True, False),)
    assert [p.value for p in Phase] == ["switching", "committing", "rolling-back"]


def test_unknown_stored_step_reads_as_none() -> None:
    assert step_or_none("gate") is Step.GATE
    assert step_or_none(None) is None and step_or_none("warp") is None


def test_readme_names_every_step_in_order() -> None:
    """README's "How an update goes" spells the steps as ``Step`` does, in the order they run."""
    text = README.read_text()
    section = text.split("## How an update goes", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`([A-Z]+)`", section)
    assert named == [s.name for s in Step]
