"""A replica count other than 1 is loaded as Compose loads it but refused where the engine starts:
the engine runs one container per service, so that stack stays as it is, named by file:line: key."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gitops_edge.engine.reconcile import Reconciler
from gitops_edge.errors import DesiredStateError
from gitops_edge.model.status import Outcome
from tests.engine.conftest import REV1, REV2, Bench, service, stack, two_services

LINES = {("services",): 1, ("services", "web"): 4, ("services", "web", "deploy", "replicas"): 9,
         ("services", "web", "scale"): 7}


@pytest.mark.parametrize(("replicas", "lines", "where"), [
    (2, LINES, "s/compose.yaml:9: services.web.deploy.replicas"),
    (0, {k: v for k, v in LINES.items() if "deploy" not in k}, "s/compose.yaml:7: services.web.scale"),
    (3, {}, "s/compose.yaml: services.web.deploy.replicas"),  # no line map: file and key
])
def test_other_replica_counts_are_refused_and_the_stack_is_left_alone(
    bench: Bench, replicas: int, lines: dict[tuple[str | int, ...], int], where: str
) -> None:
    bench.commit(REV1, two_services("s", "app:v1"), stack("t", service("web", "app:v1")))
    assert bench.sync().outcome is Outcome.APPLIED
    before = bench.live("s")
    scaled = two_services("s", "app:v2")
    scaled = replace(scaled, services=tuple(replace(s, replicas=replicas) if s.name == "web" else s
                                            for s in scaled.services))
    bench.commit(REV2, scaled, stack("t", service("web", "app:v2")))
    agent = Reconciler(bench.config, bench.source, bench.runtime, bench.store, bench.load, clock=bench.clock,
                       key_lines=lambda root, file: lines)
    result = agent.sync()
    assert result.stacks.get("s") is not Outcome.APPLIED
    (problem,) = [e for e in result.problems if isinstance(e, DesiredStateError)]
    assert str(problem).startswith(f"{where}: {replicas} replicas"), str(problem)
    assert bench.live("s") == before  # not one container of the refused stack touched
    bench.assert_converged(stack("t", service("web", "app:v2")), REV2)  # the other stack goes on
