"""Diff desired against observed state and order the work.

Pure: the reconciler gathers the inputs (pinned images, running containers,
the specs it last applied) and this module decides, with a reason for each
action that a person can read in ``gitops-edge plan``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from gitops_edge.core.hashing import changed_fields, changed_mount_content, config_hash
from gitops_edge.model.observed import ObservedContainer, ObservedState
from gitops_edge.model.plan import Action, ActionKind, Plan, StackPlan
from gitops_edge.model.spec import DesiredState, ServiceSpec, StackSpec

RESTARTING_POLICIES = ("always", "unless-stopped")


def dependency_waves(stack: StackSpec) -> dict[str, int]:
    """Wave number per service: a service starts after everything it needs."""
    needs: dict[str, set[str]] = {s.name: set() for s in stack.services}
    for s in stack.services:
        for d in s.depends_on:
            if d.service in needs:
                needs[s.name].add(d.service)
        if s.network_mode and s.network_mode.startswith("service:"):
            target = s.network_mode.split(":", 1)[1]
            if target in needs:
                needs[s.name].add(target)
    waves: dict[str, int] = {}
    remaining = dict(needs)
    wave = 0
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if deps <= waves.keys())
        if not ready:  # a cycle: the loader rejects these, so only defend
            ready = sorted(remaining)
        for n in ready:
            waves[n] = wave
            del remaining[n]
        wave += 1
    return waves


def _describe_change(old: ServiceSpec | None, new: ServiceSpec) -> str:
    if old is None:
        return "configuration changed"
    fields = changed_fields(old, new)
    if not fields:
        return "configuration changed"
    content = changed_mount_content(old, new) if "mounts" in fields else None
    names = [f.replace("_", " ") for f in fields if not (f == "mounts" and content)]
    parts = [", ".join(names) + " changed"] if names else []
    if content:  # only the files a bind mount shows changed: name them
        parts.append("mounted content changed: " + ", ".join(content))
    return "; ".join(parts)


def shown_image(written: str | None, pinned: str | None) -> str:
    """``repo:tag@sha256:<12 hex>``: the tag a person wrote and the digest that runs."""
    if not pinned:
        return written or "?"
    if written and "@sha256:" in pinned and "@" not in written:
        return f"{written}@{pinned.split('@', 1)[1][:19]}"
    if written and pinned.startswith("sha256:"):  # a local image, no registry digest: its id
        return f"{written} (image {pinned[:19]})"
    return _short(pinned)


def _short(image: str | None) -> str:
    if not image:
        return "?"
    if "@sha256:" in image:
        repo, digest = image.split("@", 1)
        return f"{repo}@{digest[:19]}"
    return image[:19] if image.startswith("sha256:") else image


def _replica_action(
    stack: StackSpec,
    spec: ServiceSpec,
    number: int,
    current: list[ObservedContainer],
    image: str,
    chash: str,
    previous: StackSpec | None,
    wave: int,
) -> Action | None:
    """What replica ``number`` of ``spec`` needs, given the containers that carry that number."""
    def act(kind: ActionKind, reason: str) -> Action:
        return Action(
            kind=kind,
            stack=stack.name,
            service=spec.name,
            reason=reason,
            spec=spec,
            image=image,
            config_hash=chash,
            container_ids=tuple(c.id for c in current),
            wave=wave,
            number=number,
            replicas=spec.replicas,
        )

    if not current:
        if previous is None or not _has(previous, spec.name):
            return act(ActionKind.CREATE, "new service")
        before = previous.service(spec.name).replicas
        return act(ActionKind.CREATE, f"scaled {before} -> {spec.replicas}" if number > before
                   else "container missing")
    if len(current) > 1:
        return act(ActionKind.RECREATE, f"{len(current)} containers, expected one")
    c = current[0]
    if not c.managed:
        return act(ActionKind.RECREATE, "container not created by gitops-edge")
    if c.config_hash != chash:
        old = previous.service(spec.name) if previous and _has(previous, spec.name) else None
        return act(ActionKind.RECREATE, _describe_change(old, spec))
    if c.image != image:
        old_ref = previous.service(spec.name).image if previous and _has(previous, spec.name) else None
        return act(ActionKind.RECREATE,
                   f"image changed: {shown_image(old_ref, c.image)} -> {shown_image(spec.image, image)}")
    if c.status in ("created",) or (c.status in ("exited", "dead") and spec.restart in RESTARTING_POLICIES):
        return act(ActionKind.START, f"container is {c.status}")
    return None


def _by_number(current: list[ObservedContainer], replicas: int) -> tuple[dict[int, list[ObservedContainer]],
                                                                       list[ObservedContainer]]:
    """The containers of replicas 1..``replicas`` by number, and the ones beyond the count.

    A service's lone container without a number (made by hand) stands for replica 1.
    """
    if len(current) == 1 and current[0].number < 1 and replicas >= 1:
        return {1: current}, []
    wanted: dict[int, list[ObservedContainer]] = {}
    extra: list[ObservedContainer] = []
    for c in current:
        if 1 <= c.number <= replicas:
            wanted.setdefault(c.number, []).append(c)
        else:
            extra.append(c)
    return wanted, extra


def _service_actions(
    stack: StackSpec,
    spec: ServiceSpec,
    current: list[ObservedContainer],
    image: str,
    chash: str,
    previous: StackSpec | None,
    wave: int,
) -> tuple[list[Action], list[Action]]:
    """(removals, the rest) for one service: replicas beyond the count go, highest number first,
    as Compose scales down; replicas 1..N are diffed one by one."""
    wanted, extra = _by_number(current, spec.replicas)
    before = previous.service(spec.name).replicas if previous and _has(previous, spec.name) else None
    why = (f"scaled {before} -> {spec.replicas}" if before is not None and before > spec.replicas
           else f"beyond the {spec.replicas} replica(s) wanted")
    removes = [
        Action(
            kind=ActionKind.REMOVE,
            stack=stack.name,
            service=spec.name,
            reason=why,
            container_ids=(c.id,),
            number=c.number,
            replicas=spec.replicas,
        )
        for c in sorted(extra, key=lambda c: -c.number)
    ]
    rest = [
        a for n in range(1, spec.replicas + 1)
        if (a := _replica_action(stack, spec, n, wanted.get(n, []), image, chash, previous, wave)) is not None
    ]
    return removes, rest


def can_start_first(spec: ServiceSpec) -> bool:
    """May the new container run beside the old one while it proves itself?

    Not when both would claim something only one can hold: a fixed host port
    (or the host's network), a device, a fixed container name; nor when both
    would write the same data (a read-write volume or bind mount), since two
    instances of, say, a database on one data directory corrupt it.
    """
    if spec.container_name or spec.devices or spec.network_mode == "host":
        return False
    # A fixed MAC or IP address, or a GPU, can be held by one container at a time too.
    if spec.mac_address or spec.device_requests or any(a.ipv4_address or a.ipv6_address for a in spec.networks):
        return False
    if any(p.published for p in spec.ports):
        return False
    return not any(m.type in ("volume", "bind") and not m.read_only for m in spec.mounts)


def _has(stack: StackSpec, service: str) -> bool:
    return any(s.name == service for s in stack.services)


def plan_stack(
    stack: StackSpec,
    revision: str,
    observed: Iterable[ObservedContainer],
    pinned: Mapping[str, str],
    previous: StackSpec | None = None,
) -> StackPlan:
    """Plan one stack; ``pinned`` maps service name to its pinned image."""
    live = [c for c in observed if c.stack == stack.name and not c.kept]
    by_service: dict[str, list[ObservedContainer]] = {}
    for c in live:
        by_service.setdefault(c.service, []).append(c)
    waves = dependency_waves(stack)
    wanted = {s.name for s in stack.services}

    removes = [
        Action(
            kind=ActionKind.REMOVE,
            stack=stack.name,
            service=svc,
            reason="no longer in Git",
            container_ids=tuple(c.id for c in cs),
        )
        for svc, cs in sorted(by_service.items())
        if svc not in wanted
    ]

    actions: dict[str, list[Action]] = {}
    unchanged: list[str] = []
    for spec in sorted(stack.services, key=lambda s: (waves[s.name], s.name)):
        chash = config_hash(stack, spec)
        current = by_service.get(spec.name, [])
        scaled_down, own = _service_actions(
            stack, spec, current, pinned[spec.name], chash, previous, waves[spec.name]
        )
        removes += scaled_down
        # A container that shares another's network namespace, or that asked to
        # restart with its dependency, follows that dependency (a stopped one too:
        # starting it would join the namespace of the container being replaced).
        cause = _cascade(spec, actions)
        if cause is not None:
            busy = {a.number for a in own if a.kind is not ActionKind.START}
            present, _extra = _by_number(current, spec.replicas)
            own = [a for a in own if a.kind is not ActionKind.START] + [
                Action(
                    kind=ActionKind.RECREATE,
                    stack=stack.name,
                    service=spec.name,
                    reason=cause,
                    spec=spec,
                    image=pinned[spec.name],
                    config_hash=chash,
                    container_ids=tuple(c.id for c in present[n]),
                    wave=waves[spec.name],
                    number=n,
                    replicas=spec.replicas,
                )
                for n in sorted(present) if n not in busy
            ]
            own.sort(key=lambda a: a.number)
        if not own and not scaled_down:
            unchanged.append(spec.name)
        actions[spec.name] = [
            replace(a, start_first=True) if a.kind is ActionKind.RECREATE and can_start_first(spec) else a
            for a in own
        ]

    used_nets = {att.network for s in stack.services for att in s.networks}
    used_vols = {m.source for s in stack.services for m in s.mounts if m.type == "volume"}
    return StackPlan(
        stack=stack.name,
        revision=revision,
        actions=(*removes, *(a for acts in actions.values() for a in acts)),
        networks=tuple(n for n in stack.networks if n.key in used_nets),
        volumes=tuple(v for v in stack.volumes if v.key in used_vols),
        unchanged=tuple(sorted(unchanged)),
    )


def _cascade(spec: ServiceSpec, actions: Mapping[str, list[Action]]) -> str | None:
    # a dependency whose first container is new; added replicas leave the others' alone
    replaced = {n for n, acts in actions.items() for a in acts
                if a.kind is ActionKind.RECREATE or (a.kind is ActionKind.CREATE and a.number <= 1)}
    if spec.network_mode and spec.network_mode.startswith("service:"):
        target = spec.network_mode.split(":", 1)[1]
        if target in replaced:
            return f"shares the network of {target}, which is recreated"
    for d in spec.depends_on:
        if d.restart and d.service in replaced:
            return f"depends on {d.service} (restart: true), which is recreated"
    return None


def plan_removal(stack: str, observed: Iterable[ObservedContainer]) -> StackPlan:
    """A stack that left Git: its containers and networks go; volumes stay."""
    by_service: dict[str, list[str]] = {}
    for c in observed:
        if c.stack == stack:
            by_service.setdefault(c.service, []).append(c.id)
    return StackPlan(
        stack=stack,
        revision=None,
        actions=tuple(
            Action(
                kind=ActionKind.REMOVE,
                stack=stack,
                service=svc,
                reason="stack no longer in Git",
                container_ids=tuple(ids),
            )
            for svc, ids in sorted(by_service.items())
        ),
        remove_stack=True,
    )


def make_plan(
    desired: DesiredState,
    observed: ObservedState,
    pinned: Mapping[tuple[str, str], str],
    previous: Mapping[str, StackSpec],
    managed_stacks: Iterable[str] = (),
    skip: Iterable[str] = (),
) -> Plan:
    """The whole device's plan.

    ``managed_stacks``: stacks this device's agent applied before (its state
    store); only those are removed when they leave Git, so a project someone
    started by hand, or another agent's, is left alone.
    ``skip``: stacks not to touch this time (quarantined, automation stopped).
    """
    skipped = set(skip)
    desired_names = {s.name for s in desired.stacks}
    plans = [
        plan_stack(
            st,
            desired.revision,
            observed.for_stack(st.name),
            {svc.name: pinned[(st.name, svc.name)] for svc in st.services},
            previous.get(st.name),
        )
        for st in desired.stacks
        if st.name not in skipped
    ]
    for gone in sorted(set(managed_stacks) - desired_names - skipped):
        plans.append(plan_removal(gone, observed.for_stack(gone)))
    return Plan(revision=desired.revision, stacks=tuple(plans))


def format_plan(plan: Plan) -> list[str]:
    """Human lines for ``gitops-edge plan``."""
    lines: list[str] = []
    for sp in plan.stacks:
        if sp.is_noop:
            lines.append(f"{sp.stack}: up to date ({len(sp.unchanged)} services)")
            continue
        head = f"{sp.stack}: remove stack" if sp.remove_stack else f"{sp.stack}:"
        lines.append(head)
        for a in sp.actions:
            how = " (start-first)" if a.start_first else ""
            image = (f" [{shown_image(a.spec.image if a.spec else None, a.image)}]"
                     if a.image and not a.reason.startswith("image changed") else "")
            lines.append(f"  {a.kind.value} {a.target}{how}: {a.reason}{image}")
        for name in sp.unchanged:
            lines.append(f"  keep {name}")
    if not plan.stacks:
        lines.append("no stacks")
    return lines
