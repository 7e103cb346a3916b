"""post_start and pre_stop on the real ``StackSwitch`` and ``Reconciler``, over the fake engine.

post_start runs right after each start; the first failing hook fails the start
(as it fails ``docker compose up``) and the stack rolls back. pre_stop runs
before every stop the agent makes, with the hooks the container was created
with, and never blocks the stop. The same is shown on the real engine in
tests/integration/test_hooks.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gitops_edge.core import outcome
from gitops_edge.model.evidence import FAILED_SUFFIX
from gitops_edge.model.observed import KEPT_SUFFIX, HookRun
from gitops_edge.model.spec import ServiceHook, ServiceSpec, StackSpec
from gitops_edge.model.status import Outcome
from gitops_edge.model.trust import SecurityPolicy
from gitops_edge.ports.fakes import Run, Script
from tests.engine.conftest import REV1, REV2, REV3, Bench, service, stack


def hooked(svc: ServiceSpec, version: str) -> ServiceSpec:
    return replace(svc, post_start=(ServiceHook(("warm", svc.name, version)), ServiceHook(("ready", svc.name))),
                   pre_stop=(ServiceHook(("drain", svc.name, version)),))


def hooked_stack(image: str, version: str) -> StackSpec:
    """``db`` (fixed port: stop-first) and ``web`` after it (start-first), both with hooks."""
    return stack("s", hooked(service("db", image, port="5432"), version),
                 hooked(service("web", image, after=("db",)), version))


def test_post_start_runs_in_order_right_after_each_start(bench: Bench) -> None:
    bench.commit(REV1, hooked_stack("app:v1", "v1"))
    result = bench.sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    assert bench.runtime.hooks_run == [
        ("s-db-1", "warm db v1"), ("s-db-1", "ready db"), ("s-web-1", "warm web v1"), ("s-web-1", "ready web"),
    ]
    ids = {n: c.id for n, c in bench.containers("s").items()}
    starts = [i for i, (op, _) in enumerate(bench.runtime.calls) if op == "start_container"]
    hooks = [cid for op, cid in bench.runtime.calls if op == "run_hook"]
    assert hooks == [ids["s-db-1"]] * 2 + [ids["s-web-1"]] * 2
    # each container's hooks come before the next container starts (db's before web is even created)
    first_web_hook = next(i for i, (op, cid) in enumerate(bench.runtime.calls)
                          if op == "run_hook" and cid == ids["s-web-1"])
    assert starts[0] < first_web_hook and starts[1] < first_web_hook


def test_pre_stop_runs_the_old_containers_own_hooks_before_each_stop(bench: Bench) -> None:
    bench.commit(REV1, hooked_stack("app:v1", "v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    v1 = bench.live("s")
    bench.runtime.hooks_run.clear()
    bench.runtime.calls.clear()
    bench.commit(REV2, hooked_stack("app:v2", "v2"))
    result = bench.sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    drains = [h for h in bench.runtime.hooks_run if h[1].startswith("drain")]
    # the v1 hooks (the label of the container being stopped), not v2's; web is start-first: renamed by then
    assert drains == [("s-db-1", "drain db v1"), (f"s-web-1{KEPT_SUFFIX}", "drain web v1")]
    calls = [c for c in bench.runtime.calls if c[0] in ("run_hook", "stop_container")]
    for cid in v1.values():  # each one's hook, then at once its stop
        assert calls.index(("run_hook", cid)) + 1 == calls.index(("stop_container", cid))


def test_changing_only_a_hook_replaces_the_container(bench: Bench) -> None:
    bench.commit(REV1, hooked_stack("app:v1", "v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    before = bench.live("s")
    s = hooked_stack("app:v1", "v1")
    web = s.service("web")
    edited = replace(s, services=(s.service("db"), replace(web, pre_stop=(ServiceHook(("drain", "now")),))))
    bench.commit(REV2, edited)
    result = bench.sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    after = bench.live("s")
    assert after["s-db-1"] == before["s-db-1"] and after["s-web-1"] != before["s-web-1"]
    assert result.actions == ["recreate s/web (start-first): pre stop changed"]


@pytest.mark.parametrize(("run", "status"), [
    (HookRun(3, "warming failed: no cache\nsecond line"), "exited with status 3: warming failed: no cache"),
    (HookRun(None, "still at it"), "still running after 30s: still at it"),
], ids=["exit-3", "timeout"])
def test_a_failing_post_start_fails_the_start_and_rolls_the_stack_back(
    bench: Bench, run: HookRun, status: str
) -> None:
    bench.commit(REV1, hooked_stack("app:v1", "v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    v1 = bench.live("s")
    bench.runtime.hook_results["warm web v2"] = run
    bench.runtime.hooks_run.clear()
    bench.commit(REV2, hooked_stack("app:v2", "v2"))
    result = bench.sync()

    assert result.outcome is Outcome.ROLLED_BACK
    assert outcome.exit_code(result) == 1
    assert f"service web failed to start: hook post_start[0] (warm web v2) {status}" in result.reason
    assert "rolled back to the previous containers" in result.reason
    assert bench.live("s") == v1  # the very same v1 containers run again
    bench.assert_converged(hooked_stack("app:v1", "v1"), REV1)
    (ev,) = result.evidence
    assert (ev.service, ev.container, ev.exit_code) == ("web", "s-web-1", run.exit_code)
    assert ev.hook.startswith("post_start[0] (warm web v2)") and status in ev.hook
    assert ev.logs  # the container's own last lines come along
    assert bench.store.syncs[-1].evidence == (ev,)
    assert bench.store.quarantined()["s"][0] == REV2
    # the next hook of the failed container never ran; its own pre_stop ran before the rollback set it aside
    ran = bench.runtime.hooks_run
    assert ("s-web-1", "ready web") not in ran
    assert ("s-web-1", "drain web v2") in ran
    assert f"s-web-1{FAILED_SUFFIX}" in bench.containers("s")


def test_a_failing_pre_stop_is_logged_and_the_stop_goes_on(bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    bench.commit(REV1, hooked_stack("app:v1", "v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.runtime.hook_results["drain db v1"] = HookRun(2, "cannot flush")
    bench.commit(REV2, hooked_stack("app:v2", "v2"))
    with caplog.at_level("WARNING", logger="gitops_edge.engine.hooks"):
        result = bench.sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    bench.assert_converged(hooked_stack("app:v2", "v2"), REV2)
    assert "s-db-1: hook pre_stop[0] (drain db v1) exited with status 2: cannot flush; stopping it anyway" \
        in caplog.text


def test_removing_a_service_or_the_stack_runs_pre_stop(bench: Bench) -> None:
    bench.commit(REV1, hooked_stack("app:v1", "v1"), stack("t", hooked(service("solo", "app:v1"), "v1")))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.runtime.hooks_run.clear()
    only_db = stack("s", hooked(service("db", "app:v1", port="5432"), "v1"))
    bench.commit(REV3, only_db)  # web leaves stack s; stack t leaves the repository
    result = bench.sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    assert sorted(bench.runtime.hooks_run) == [("s-web-1", "drain web v1"), ("t-solo-1", "drain solo v1")]
    assert set(bench.live("s")) == {"s-db-1"} and bench.containers("t") == {}


def test_a_container_without_the_label_stops_without_hooks(bench: Bench) -> None:
    """One made by hand (or by ``docker compose up``): its hooks are not known, nothing is exec'd."""
    made = bench.runtime.add_container("s", "web", image="app:v0")
    bench.commit(REV1, hooked_stack("app:v1", "v1"))
    config = replace(bench.config, security=SecurityPolicy(adopt_projects=("s",)))
    result = bench.agent(config).sync()
    assert result.outcome is Outcome.APPLIED, result.reason
    assert made not in bench.runtime.containers
    assert ("stop_container", made) in bench.runtime.calls and ("run_hook", made) not in bench.runtime.calls


def test_a_container_that_exits_before_its_hook_fails_the_start(bench: Bench) -> None:
    bench.commit(REV1, hooked_stack("app:v1", "v1"))
    assert bench.sync().outcome is Outcome.APPLIED
    bench.runtime.script("app:v2", Script(Run.EXIT, exit_code=5))  # gone as soon as it started
    bench.commit(REV2, hooked_stack("app:v2", "v2"))
    result = bench.sync()
    assert result.outcome is Outcome.ROLLED_BACK
    assert "service db failed to start: hook post_start[0] (warm db v2) could not run: " in result.reason
    (ev,) = result.evidence
    assert (ev.service, ev.exit_code) == ("db", None) and "not running" in ev.hook
    bench.assert_converged(hooked_stack("app:v1", "v1"), REV1)
