"""core.plan: what a sync would do, and why, from model objects alone."""

from __future__ import annotations

from dataclasses import replace

from gitops_edge.core.hashing import config_hash
from gitops_edge.core.plan import can_start_first, dependency_waves, format_plan, make_plan, plan_stack
from gitops_edge.model.observed import KEPT_SUFFIX, ObservedContainer, ObservedState
from gitops_edge.model.plan import ActionKind, Plan, StackPlan
from gitops_edge.model.spec import (
    Dependency,
    DesiredState,
    DeviceRequest,
    Mount,
    NetworkAttachment,
    NetworkSpec,
    PortMapping,
    ServiceSpec,
    StackSpec,
    VolumeSpec,
)

IMG = "reg/app@sha256:" + "a" * 64
IMG2 = "reg/app@sha256:" + "b" * 64
REV = "c0ffee" * 6 + "abcd"

DEFAULT_NET = (NetworkAttachment("default"),)


def svc(name: str, **kw: object) -> ServiceSpec:
    kw.setdefault("networks", DEFAULT_NET)
    return ServiceSpec(name=name, image="reg/app:v1", **kw)  # type: ignore[arg-type]


def stack(name: str, *services: ServiceSpec, volumes: tuple[VolumeSpec, ...] = ()) -> StackSpec:
    return StackSpec(
        name=name,
        path=name,
        compose_file=f"{name}/compose.yaml",
        services=services,
        networks=(NetworkSpec("default", f"{name}_default"), NetworkSpec("unused", f"{name}_unused")),
        volumes=volumes,
    )


def running(st: StackSpec, service: str, *, image: str = IMG, n: int = 1, **kw: object) -> ObservedContainer:
    """A container the agent created for ``service`` exactly as ``st`` asks."""
    fields: dict[str, object] = {
        "id": f"{service}-{n}-id",
        "name": f"{st.name}-{service}-{n}",
        "stack": st.name,
        "service": service,
        "number": n,
        "status": "running",
        "image": image,
        "config_hash": config_hash(st, st.service(service)),
        "revision": REV,
        "managed": True,
    }
    fields.update(kw)
    return ObservedContainer(**fields)  # type: ignore[arg-type]


def pins(st: StackSpec, image: str = IMG) -> dict[str, str]:
    return {s.name: image for s in st.services}


def kinds(sp: StackPlan) -> list[tuple[str, str]]:
    return [(a.kind.value, a.service) for a in sp.actions]


# --- per service decisions ---------------------------------------------------


def test_new_service_is_created_with_everything_it_needs() -> None:
    st = stack("s", svc("web", mounts=(Mount("volume", "/data", "data"),)),
               volumes=(VolumeSpec("data", "s_data"), VolumeSpec("spare", "s_spare")))
    sp = plan_stack(st, REV, [], pins(st))
    [a] = sp.actions
    assert (a.kind, a.service, a.reason) == (ActionKind.CREATE, "web", "new service")
    assert a.image == IMG and a.config_hash == config_hash(st, st.service("web"))
    assert a.spec == st.service("web") and a.container_ids == ()
    # only what the services use is created
    assert [n.key for n in sp.networks] == ["default"]
    assert [v.key for v in sp.volumes] == ["data"]


def test_missing_container_of_a_known_service_says_so() -> None:
    st = stack("s", svc("web"))
    sp = plan_stack(st, REV, [], pins(st), previous=st)
    assert [(a.kind, a.reason) for a in sp.actions] == [(ActionKind.CREATE, "container missing")]


def test_everything_matching_is_a_noop() -> None:
    st = stack("s", svc("web"), svc("db"))
    obs = [running(st, "web"), running(st, "db")]
    sp = plan_stack(st, REV, obs, pins(st), previous=st)
    assert sp.is_noop and sp.actions == ()
    assert sp.unchanged == ("db", "web")
    plan = make_plan(DesiredState(REV, (st,)), ObservedState(tuple(obs)), {("s", "web"): IMG, ("s", "db"): IMG},
                     {"s": st}, managed_stacks=["s"])
    assert plan.is_noop and plan.actions() == ()
    assert format_plan(plan) == ["s: up to date (2 services)"]


def test_image_changed_names_old_and_new_digest() -> None:
    st = stack("s", svc("web"))
    sp = plan_stack(st, REV, [running(st, "web", image=IMG)], pins(st, IMG2), previous=st)
    [a] = sp.actions
    assert a.kind is ActionKind.RECREATE
    # the tag as written beside the digest that runs
    assert a.reason == f"image changed: reg/app:v1@sha256:{'a' * 12} -> reg/app:v1@sha256:{'b' * 12}"
    assert a.container_ids == ("web-1-id",)
    assert a.image == IMG2


def test_changed_fields_are_named_from_the_previous_spec() -> None:
    old = stack("s", svc("web", environment=(("A", "1"),)))
    new = stack("s", svc("web", environment=(("A", "2"),), read_only=True, depends_on=(Dependency("x"),)))
    sp = plan_stack(new, REV, [running(old, "web")], pins(new), previous=old)
    assert [(a.kind, a.reason) for a in sp.actions] == [(ActionKind.RECREATE, "environment, read only changed")]


def test_changed_hash_without_a_previous_spec_is_a_generic_reason() -> None:
    old = stack("s", svc("web"))
    new = stack("s", svc("web", user="1000"))
    sp = plan_stack(new, REV, [running(old, "web")], pins(new), previous=None)
    assert [a.reason for a in sp.actions] == ["configuration changed"]


def test_a_container_beyond_the_replica_count_is_removed_as_compose_scales_down() -> None:
    st = stack("s", svc("web"))
    obs = [running(st, "web", n=1), running(st, "web", n=3), running(st, "web", n=2)]
    sp = plan_stack(st, REV, obs, pins(st), previous=st)
    assert [(a.kind, a.number, a.container_ids) for a in sp.actions] == [
        (ActionKind.REMOVE, 3, ("web-3-id",)), (ActionKind.REMOVE, 2, ("web-2-id",))]
    assert {a.reason for a in sp.actions} == {"beyond the 1 replica(s) wanted"}
    assert sp.unchanged == ()


def test_two_containers_with_one_number_are_replaced_by_one() -> None:
    st = stack("s", svc("web"))
    obs = [running(st, "web", n=1), running(st, "web", n=1, id="other-id")]
    [a] = plan_stack(st, REV, obs, pins(st), previous=st).actions
    assert (a.kind, a.reason, a.number) == (ActionKind.RECREATE, "2 containers, expected one", 1)
    assert a.container_ids == ("web-1-id", "other-id")


def test_unmanaged_container_is_taken_over() -> None:
    st = stack("s", svc("web"))
    obs = [running(st, "web", managed=False, config_hash="compose-hash", image=None)]
    [a] = plan_stack(st, REV, obs, pins(st)).actions
    assert (a.kind, a.reason) == (ActionKind.RECREATE, "container not created by gitops-edge")


def test_exited_container_with_restart_always_is_started() -> None:
    for policy in ("always", "unless-stopped"):
        st = stack("s", svc("web", restart=policy))
        [a] = plan_stack(st, REV, [running(st, "web", status="exited")], pins(st), previous=st).actions
        assert (a.kind, a.reason) == (ActionKind.START, "container is exited")
        assert a.container_ids == ("web-1-id",)


def test_created_container_is_started_whatever_the_policy() -> None:
    st = stack("s", svc("web"))
    [a] = plan_stack(st, REV, [running(st, "web", status="created")], pins(st), previous=st).actions
    assert (a.kind, a.reason) == (ActionKind.START, "container is created")


def test_exited_container_with_restart_no_is_kept() -> None:
    for policy in ("no", "on-failure", "on-failure:3"):
        st = stack("s", svc("job", restart=policy))
        sp = plan_stack(st, REV, [running(st, "job", status="exited")], pins(st), previous=st)
        assert sp.is_noop and sp.unchanged == ("job",), policy


def test_kept_containers_are_ignored() -> None:
    st = stack("s", svc("web"))
    kept = running(st, "web", id="old", name=f"s-web-1{KEPT_SUFFIX}", image=IMG2, kept=True, status="exited")
    sp = plan_stack(st, REV, [running(st, "web"), kept], pins(st), previous=st)
    assert sp.is_noop
    # a kept container alone does not stand in for the service either
    [a] = plan_stack(st, REV, [kept], pins(st), previous=st).actions
    assert (a.kind, a.container_ids) == (ActionKind.CREATE, ())


def test_service_removed_from_git_is_removed_first() -> None:
    old = stack("s", svc("web"), svc("worker"))
    new = stack("s", svc("web", user="1"))
    sp = plan_stack(new, REV, [running(old, "web"), running(old, "worker")], pins(new), previous=old)
    assert kinds(sp) == [("remove", "worker"), ("recreate", "web")]
    assert sp.actions[0].reason == "no longer in Git" and sp.actions[0].container_ids == ("worker-1-id",)
    assert sp.actions[0].spec is None


def test_containers_of_other_stacks_are_not_this_stacks_business() -> None:
    st = stack("s", svc("web"))
    other = replace(running(st, "web"), stack="other", id="x")
    sp = plan_stack(st, REV, [running(st, "web"), other], pins(st), previous=st)
    assert sp.is_noop


# --- dependency waves and cascades -----------------------------------------------


def test_dependency_waves_follow_depends_on_and_network_mode() -> None:
    st = stack(
        "s",
        svc("proxy", depends_on=(Dependency("web"),)),
        svc("web", depends_on=(Dependency("db"), Dependency("cache", required=False))),
        svc("db"),
        svc("sidecar", networks=(), network_mode="service:web"),
        svc("lonely", networks=(), network_mode="host"),
        svc("ghost", depends_on=(Dependency("not-in-stack", required=False),)),
    )
    assert dependency_waves(st) == {"db": 0, "ghost": 0, "lonely": 0, "web": 1, "proxy": 2, "sidecar": 2}
    sp = plan_stack(st, REV, [], pins(st))
    # actions come in wave order, then by name
    assert [(a.wave, a.service) for a in sp.actions] == [
        (0, "db"), (0, "ghost"), (0, "lonely"), (1, "web"), (2, "proxy"), (2, "sidecar")]


def test_dependency_cycle_does_not_hang() -> None:
    st = stack("s", svc("a", depends_on=(Dependency("b"),)), svc("b", depends_on=(Dependency("a"),)))
    assert dependency_waves(st) == {"a": 0, "b": 0}


def test_network_mode_service_follows_a_recreated_target() -> None:
    old = stack("s", svc("vpn"), svc("app", networks=(), network_mode="service:vpn"))
    obs = [running(old, "vpn"), running(old, "app")]
    sp = plan_stack(old, REV, obs, pins(old, IMG2) | {"app": IMG}, previous=old)
    assert kinds(sp) == [("recreate", "vpn"), ("recreate", "app")]
    assert sp.actions[1].reason == "shares the network of vpn, which is recreated"
    assert sp.actions[1].container_ids == ("app-1-id",)
    assert sp.actions[1].image == IMG and sp.actions[1].wave == 1


def test_network_mode_service_does_not_follow_an_unchanged_target() -> None:
    old = stack("s", svc("vpn"), svc("app", networks=(), network_mode="service:vpn"))
    sp = plan_stack(old, REV, [running(old, "vpn"), running(old, "app")], {"vpn": IMG, "app": IMG2}, previous=old)
    assert kinds(sp) == [("recreate", "app")]
    assert sp.unchanged == ("vpn",)


def test_stopped_network_mode_service_is_recreated_not_started_when_its_target_is() -> None:
    # Starting it would join the namespace of the container that is being replaced.
    old = stack("s", svc("vpn"), svc("app", networks=(), network_mode="service:vpn", restart="always"))
    obs = [running(old, "vpn"), running(old, "app", status="exited")]
    sp = plan_stack(old, REV, obs, {"vpn": IMG2, "app": IMG}, previous=old)
    assert kinds(sp) == [("recreate", "vpn"), ("recreate", "app")]


def test_depends_on_restart_true_cascades_but_plain_depends_on_does_not() -> None:
    st = stack(
        "s",
        svc("db"),
        svc("api", depends_on=(Dependency("db", restart=True),)),
        svc("cron", depends_on=(Dependency("db"),)),
        svc("ui", depends_on=(Dependency("api", restart=True),)),
    )
    obs = [running(st, n) for n in ("db", "api", "cron", "ui")]
    sp = plan_stack(st, REV, obs, pins(st) | {"db": IMG2}, previous=st)
    assert kinds(sp) == [("recreate", "db"), ("recreate", "api"), ("recreate", "ui")]
    assert sp.actions[1].reason == "depends on db (restart: true), which is recreated"
    assert sp.actions[2].reason == "depends on api (restart: true), which is recreated"
    assert sp.unchanged == ("cron",)


def test_depends_on_restart_true_does_not_cascade_on_a_start() -> None:
    st = stack("s", svc("db", restart="always"), svc("api", depends_on=(Dependency("db", restart=True),)))
    sp = plan_stack(st, REV, [running(st, "db", status="exited"), running(st, "api")], pins(st), previous=st)
    assert kinds(sp) == [("start", "db")]


# --- the device's plan -------------------------------------------------------------


def test_stack_left_git_is_removed_only_when_this_agent_managed_it() -> None:
    keep = stack("keep", svc("web"))
    gone = stack("gone", svc("web"), svc("db"))
    hand = stack("byhand", svc("web"))
    obs = ObservedState((
        running(keep, "web"),
        running(gone, "web"), running(gone, "db"),
        # a project someone started with `docker compose up`: not labelled by us
        running(hand, "web", managed=False, config_hash="x", image=None),
    ))
    desired = DesiredState(REV, (keep,))
    plan = make_plan(desired, obs, {("keep", "web"): IMG}, {"keep": keep, "gone": gone},
                     managed_stacks=["keep", "gone"])
    assert [sp.stack for sp in plan.stacks] == ["keep", "gone"]
    removal = plan.stacks[1]
    assert removal.remove_stack and removal.revision is None
    assert kinds(removal) == [("remove", "db"), ("remove", "web")]
    assert {a.reason for a in removal.actions} == {"stack no longer in Git"}
    assert "byhand" not in {a.stack for a in plan.actions()}
    assert format_plan(plan) == [
        "keep: up to date (1 services)",
        "gone: remove stack",
        "  remove db: stack no longer in Git",
        "  remove web: stack no longer in Git",
    ]


def test_unmanaged_compose_project_not_in_git_is_never_removed() -> None:
    hand = stack("byhand", svc("web"))
    obs = ObservedState((running(hand, "web", managed=False, config_hash=None, image=None),))
    plan = make_plan(DesiredState(REV, ()), obs, {}, {}, managed_stacks=[])
    assert plan.stacks == () and plan.is_noop
    assert format_plan(plan) == ["no stacks"]


def test_managed_stack_without_containers_still_goes_with_its_network() -> None:
    plan = make_plan(DesiredState(REV, ()), ObservedState(), {}, {}, managed_stacks=["old"])
    [sp] = plan.stacks
    assert sp.remove_stack and sp.actions == () and not sp.is_noop and not plan.is_noop


def test_skipped_stacks_are_neither_planned_nor_removed() -> None:
    a = stack("a", svc("web"))
    b = stack("b", svc("web"))
    plan = make_plan(DesiredState(REV, (a, b)), ObservedState(), {("a", "web"): IMG, ("b", "web"): IMG}, {},
                     managed_stacks=["a", "b", "gone"], skip=["b", "gone"])
    assert [sp.stack for sp in plan.stacks] == ["a"]


def test_format_plan_lists_actions_and_kept_services() -> None:
    st = stack("s", svc("web"), svc("db"))
    sp = plan_stack(st, REV, [running(st, "db")], pins(st), previous=st)
    plan = make_plan(DesiredState(REV, (st,)), ObservedState((running(st, "db"),)),
                     {("s", "web"): IMG, ("s", "db"): IMG}, {"s": st})
    assert plan.stacks == (sp,)
    assert format_plan(plan) == ["s:", f"  create web: container missing [reg/app:v1@sha256:{'a' * 12}]", "  keep db"]


def test_start_first_only_where_two_containers_can_coexist() -> None:
    assert can_start_first(svc("web"))
    assert can_start_first(svc("web", ports=(PortMapping(8080),)))  # ephemeral host port
    assert can_start_first(svc("web", mounts=(Mount("volume", "/cfg", "cfg", read_only=True),)))
    assert not can_start_first(svc("web", ports=(PortMapping(8080, published="80"),)))
    assert not can_start_first(svc("web", container_name="web"))
    assert not can_start_first(svc("web", devices=("/dev/ttyUSB0:/dev/ttyUSB0:rwm",)))
    assert not can_start_first(svc("web", network_mode="host", networks=()))
    assert not can_start_first(svc("db", mounts=(Mount("volume", "/var/lib/db", "data"),)))
    assert not can_start_first(svc("db", mounts=(Mount("bind", "/data", "/srv/data"),)))
    assert not can_start_first(svc("web", mac_address="02:42:ac:11:00:99"))
    assert not can_start_first(svc("web", networks=(NetworkAttachment("default", ipv4_address="10.0.0.5"),)))
    assert not can_start_first(svc("ml", device_requests=(DeviceRequest(count=-1, capabilities=("gpu",)),)))
    secret = Mount("bind", "/run/secrets/pw", "/etc/edge/secrets/pw", read_only=True, origin="secret")
    assert can_start_first(svc("web", mounts=(secret,)))


def test_recreate_is_marked_start_first_and_says_so() -> None:
    st = stack("s", svc("api"), svc("edge", ports=(PortMapping(80, published="80"),)))
    obs = [running(st, "api", image=IMG), running(st, "edge", image=IMG)]
    sp = plan_stack(st, REV, obs, pins(st, IMG2), previous=st)
    marks = {a.service: a.start_first for a in sp.actions}
    assert marks == {"api": True, "edge": False}
    text = "\n".join(format_plan(Plan(REV, (sp,))))
    assert "recreate api (start-first): image changed" in text
    assert "recreate edge: image changed" in text
