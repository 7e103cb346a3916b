"""Issue 11, the pure parts: conditions, exit-code order, log lines, pull progress, completion."""

from __future__ import annotations

import json
import logging
import re
import subprocess

import pytest

from gitops_edge.adapters.docker.pull_progress import PullProgress
from gitops_edge.cli.completion import bash, zsh
from gitops_edge.cli.main import _parser, main
from gitops_edge.core.conditions import condition
from gitops_edge.core.outcome import exit_code, severity
from gitops_edge.errors import ApplyError, DesiredStateError, RegistryError, TrustError
from gitops_edge.logs import QUIET, setup_logging
from gitops_edge.model.condition import Ready, Reason, ServiceView, StackFacts, StackOutcome
from gitops_edge.model.result import SyncResult
from gitops_edge.model.status import Outcome
from gitops_edge.model.step import Step

REV, OLD = "b" * 40, "a" * 40
UP = (ServiceView("web", "running", "healthy"), ServiceView("db", "running"))


def facts(**kw: object) -> StackFacts:
    base: dict[str, object] = {"stack": "s", "applied_revision": OLD, "services": UP,
                               "expected_services": ("web", "db")}
    base.update(kw)
    return StackFacts(**base)  # type: ignore[arg-type]


def test_conditions_in_order_of_precedence() -> None:
    rolled = StackOutcome("s", Outcome.ROLLED_BACK, Reason.ROLLED_BACK, "web failed", REV, Step.GATE)
    cases = [
        (facts(), Ready.TRUE, Reason.READY),
        (facts(stopped="rollback failed", suspended="x"), Ready.FALSE, Reason.AUTOMATION_STOPPED),
        (facts(suspended="by hand", quarantined=(REV, "x")), Ready.UNKNOWN, Reason.SUSPENDED),
        (facts(switching=True), Ready.UNKNOWN, Reason.PROGRESSING),
        (facts(quarantined=(REV, "web failed"), outcome=rolled), Ready.FALSE, Reason.ROLLED_BACK),
        (facts(quarantined=(REV, "after a crash")), Ready.FALSE, Reason.QUARANTINED),
        (facts(outcome=StackOutcome("s", Outcome.REFUSED, Reason.REFUSED, "privileged", REV)),
         Ready.FALSE, Reason.REFUSED),
        (facts(outcome=StackOutcome("s", Outcome.ERROR, Reason.INVALID, "bad key", REV)),
         Ready.FALSE, Reason.INVALID),
        (facts(outcome=StackOutcome("s", Outcome.APPLIED, Reason.READY, "", REV)), Ready.TRUE, Reason.READY),
        (facts(applied_revision=None, services=()), Ready.FALSE, Reason.NOT_DEPLOYED),
        (facts(services=None), Ready.UNKNOWN, Reason.ENGINE_UNREACHABLE),
        (facts(services=UP[:1]), Ready.FALSE, Reason.UNHEALTHY),  # db is missing
        (facts(services=(UP[0], ServiceView("db", "exited"))), Ready.FALSE, Reason.UNHEALTHY),
        (facts(services=(UP[0], ServiceView("db", "exited")), one_shot=("db",)), Ready.TRUE, Reason.READY),
        (facts(services=(ServiceView("web", "running", "starting"), UP[1])), Ready.UNKNOWN, Reason.PROGRESSING),
    ]
    for f, ready, reason in cases:
        c = condition(f)
        assert (c.ready, c.reason) == (ready, reason), (f, c)
        assert c.revision == f.applied_revision  # always the revision that runs
    q = condition(facts(quarantined=(REV, "web failed"), outcome=rolled))
    assert q.step is Step.GATE and REV[:12] in q.message and OLD[:12] in q.message


def test_replicas_count_as_their_service_once() -> None:
    three = (*UP, ServiceView("web", "running", "healthy"), ServiceView("web", "running", "healthy"))
    assert condition(facts(services=three)).message == f"applied {OLD[:12]}, 2 service(s) up"
    sick = (*three[:3], ServiceView("web", "running", "unhealthy"))
    assert (condition(facts(services=sick)).reason, condition(facts(services=sick)).message) == (
        Reason.UNHEALTHY, "web unhealthy")


def test_the_worst_problem_sets_the_exit_code() -> None:
    rolled, refused = ApplyError("s: rolled back"), TrustError("unsigned")
    invalid, unreachable = DesiredStateError("bad"), RegistryError("down")
    order = sorted([unreachable, invalid, rolled, refused], key=severity, reverse=True)
    assert [e.exit_code for e in order] == [1, 3, 2, 4]
    assert exit_code(SyncResult(Outcome.REFUSED, error=refused, problems=[refused, invalid])) == 3


def test_json_lines_carry_the_engine_fields_and_rfc3339_times(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", "json")
    logging.getLogger("gitops_edge.test").warning(
        "web: RolledBack", extra={"stack": "web", "revision": REV, "step": "gate", "outcome": "rolled_back"})
    logging.getLogger("apscheduler.scheduler").info("Added job")  # library chatter: off
    line, *rest = capsys.readouterr().err.splitlines()
    assert rest == []
    data = json.loads(line)
    assert {k: data[k] for k in ("stack", "revision", "step", "outcome")} == {
        "stack": "web", "revision": REV, "step": "gate", "outcome": "rolled_back"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", data["ts"]), data["ts"]
    assert all(logging.getLogger(n).level == logging.WARNING for n in QUIET)

    setup_logging("info", "human")
    logging.getLogger("gitops_edge.test").info("hello")
    human = capsys.readouterr().err.strip()
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d INFO hello$", human), human


def test_pull_progress_counts_layers_and_bytes() -> None:
    now = [0.0]
    p = PullProgress("reg/app@sha256:abc", clock=lambda: now[0])
    p.feed({"status": "Pulling from app", "id": "sha256:abc"})  # not a layer
    p.feed({"status": "Already exists", "id": "l1"})
    p.feed({"status": "Downloading", "id": "l2", "progressDetail": {"current": 1_500_000, "total": 3_000_000}})
    now[0] = 6.0
    assert p.summary() == "1/2 layers, 1.5 MB of 3.0 MB, 6s"
    p.feed({"status": "Pull complete", "id": "l2"})
    assert p.summary() == "2/2 layers, 3.0 MB of 3.0 MB, 6s"


def test_completion_scripts_know_every_command(tmp_path: object) -> None:
    parser = _parser()
    script = bash(parser)
    out = subprocess.run(
        ["bash", "-c", script + '\nCOMP_WORDS=(gitops-edge --config c.yaml hi); COMP_CWORD=3; _gitops_edge; '
         'echo "${COMPREPLY[@]}"; COMP_WORDS=(gitops-edge history --s); COMP_CWORD=2; _gitops_edge; '
         'echo "${COMPREPLY[@]}"'],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert out.stdout.splitlines() == ["history", "--since"]
    z = zsh(parser)
    assert z.startswith("#compdef gitops-edge")
    for command in ("sync", "status", "history", "rollback", "fleet", "completion"):
        assert f"'{command}:" in z, command


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None
    for name in sub.choices:
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        assert "example:\n  gitops-edge " in text or "example:\n  source <(" in text, name
