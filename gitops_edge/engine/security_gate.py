"""The security step of a sync: refuse, with ``file:line: key``, what the device policy does not allow.

Refusals are per stack (stacks are independent): the engine fails each refused
stack and goes on with the others.

``core.security`` decides (pure, on specs); this step locates each finding in
its compose file (``KeyLines``, from the wiring, reads the line map again only
when something is refused)
and adds the checks that need the engine's view: a compose project the agent
did not create is not taken over unless the device config names it
(``security.adopt_projects``), and a ``container_name`` may not be the name
of another project's container.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from gitops_edge.core.compose.problems import KeyPath, line_of
from gitops_edge.core.security import RESERVED, Finding, check_stack, format_path
from gitops_edge.errors import Location, TrustError
from gitops_edge.model.observed import ObservedState
from gitops_edge.model.spec import DesiredState, StackSpec
from gitops_edge.model.trust import SecurityPolicy

KeyLines = Callable[[Path, str], Mapping[KeyPath, int]]
"""(checkout root, repo-relative compose file) -> its key-path-to-line map (wiring reads the YAML)."""


def policy_refusals(
    desired: DesiredState, policy: SecurityPolicy, root: Path, lines: KeyLines | None = None
) -> dict[str, TrustError]:
    """Per refused stack: a ``TrustError`` naming its first refused key (and how many more)."""
    out: dict[str, TrustError] = {}
    for st in desired.stacks:
        findings = check_stack(st, policy, str(root))
        if findings:
            out[st.name] = _refusal(_located(st, root, findings, lines))
    return out


def check_policy(desired: DesiredState, policy: SecurityPolicy, root: Path, lines: KeyLines | None = None) -> None:
    """Raise the first stack's refusal, if any."""
    _raise(policy_refusals(desired, policy, root, lines))


def check_ownership(
    desired: DesiredState, observed: ObservedState, managed: Collection[str], policy: SecurityPolicy, root: Path,
    lines: KeyLines | None = None, name_owner: Callable[[str], str | None] | None = None,
) -> None:
    """Raise the first stack's refusal by ``ownership_refusals``, if any."""
    _raise(ownership_refusals(desired, observed, managed, policy, root, lines, name_owner))


def ownership_refusals(
    desired: DesiredState, observed: ObservedState, managed: Collection[str], policy: SecurityPolicy, root: Path,
    lines: KeyLines | None = None, name_owner: Callable[[str], str | None] | None = None,
) -> dict[str, TrustError]:
    """Refuse taking over a hand-made compose project, or a container name someone else holds.

    ``managed``: stacks the agent applied before (its state store). A project
    whose containers carry no gitops-edge labels was made by someone else.
    ``name_owner``: the project of any container holding a name (``""``: none; None:
    no such container), for names no observed (compose-labelled) container has.
    """
    known = {c.name: c.stack for c in observed.containers}

    def owner_of(name: str) -> str | None:
        if name in known or name_owner is None:
            return known.get(name)
        return name_owner(name)

    out: dict[str, TrustError] = {}
    for st in desired.stacks:
        found: list[Finding] = []
        foreign = sorted(c.name for c in observed.for_stack(st.name) if not c.managed)
        if st.name not in managed and st.name not in policy.adopt_projects and foreign:
            found.append(Finding(
                st.name, ("services",), f"stack {st.name}",
                f"compose project {st.name} already runs containers gitops-edge did not create "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); applying would take it over "
                "and remove its other services", "adopt_projects",
            ))  # fmt: skip
        for svc in st.services:
            owner = owner_of(svc.container_name) if svc.container_name else None
            if owner is not None and owner != st.name:
                held_by = f"compose project {owner}" if owner else "no compose project (made by hand)"
                found.append(Finding(
                    st.name, ("services", svc.name, "container_name"), f"container_name {svc.container_name}",
                    f"it names an existing container of {held_by}", RESERVED,
                ))  # fmt: skip
        if found:
            out[st.name] = _refusal(_located(st, root, found, lines))
    return out


def _located(stack: StackSpec, root: Path, findings: list[Finding], lines: KeyLines | None) -> list[str]:
    where = lines(root, stack.compose_file) if lines is not None else {}
    return [f"{Location(stack.compose_file, line_of(where, f.path), format_path(f.path))}: {f.message()}"
            for f in findings]  # fmt: skip


def _refusal(problems: list[str]) -> TrustError:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return TrustError(problems[0] + more)


def _raise(refusals: dict[str, TrustError]) -> None:
    if refusals:
        raise next(iter(refusals.values()))
