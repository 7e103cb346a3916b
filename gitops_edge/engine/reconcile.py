"""One reconcile pass: fetch -> load -> resolve -> plan -> stage -> switch -> gate -> commit.

Each step either succeeds or raises one of our errors (permanent or
transient); the outcome of the sync is always recorded, on every exit path,
in the ``finally`` of ``sync``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gitops_edge.adapters.store.sqlite import StateStore
from gitops_edge.core import image_ref
from gitops_edge.core.outcome import outcome_for
from gitops_edge.core.plan import make_plan
from gitops_edge.core.serialize import stack_from_json, stack_to_json
from gitops_edge.core.windows import in_window, next_opening
from gitops_edge.engine.image_policy import ImagePolicy
from gitops_edge.engine.switch import Journal, StackSwitch
from gitops_edge.errors import (
    ApplyError,
    EdgeError,
    ImagePlatformError,
    Location,
    RegistryError,
    RollbackFailed,
    StateStoreError,
    TrustError,
)
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.observed import KEPT_SUFFIX, ObservedState
from gitops_edge.model.plan import Plan, StackPlan
from gitops_edge.model.result import SyncResult
from gitops_edge.model.spec import DesiredState, ServiceSpec, StackSpec
from gitops_edge.model.status import Outcome
from gitops_edge.ports.images import PlatformResolver
from gitops_edge.ports.runtime import ContainerRuntime
from gitops_edge.ports.source import GitSource

log = logging.getLogger("gitops_edge.engine.reconcile")

Loader = Callable[[Path, str, str], DesiredState]


@dataclass(frozen=True)
class Prepared:
    """Everything a plan is made of, gathered once per sync."""

    revision: str
    desired: DesiredState
    observed: ObservedState
    pinned: Mapping[tuple[str, str], str]
    plan: Plan
    skipped: Mapping[str, str]  # stack -> why it is left alone this time


class Reconciler:
    def __init__(
        self,
        config: AgentConfig,
        source: GitSource,
        runtime: ContainerRuntime,
        store: StateStore,
        loader: Loader,
        image_policy: ImagePolicy | None = None,
        platforms: PlatformResolver | None = None,
    ) -> None:
        self.config = config
        self.source = source
        self.runtime = runtime
        self.store = store
        self.loader = loader
        self.image_policy = image_policy
        self.platforms = platforms
        self.revision_seen: str | None = None  # the commit this sync checked out, once it has
        self._platforms: dict[str, str] = {}  # pinned image -> the platform it is pulled for
        self.switch = StackSwitch(runtime, store.journal_write, store.journal_clear, config.health)

    # -- read-only steps (also serve `plan`) -------------------------------------------------
    def prepare(self) -> Prepared:
        checkout = self.source.checkout(applied_revision=self._applied_revision())
        self.revision_seen = checkout.revision
        desired = self.loader(checkout.root, self.config.source.path, checkout.revision)
        self._check_security(desired, checkout.root)
        skipped = self._skipped(desired.revision)
        observed = self.runtime.observe()
        pinned = self._pin(desired, skipped)
        previous = {name: stack_from_json(a.specs_json) for name, a in self.store.applied().items()}
        plan = make_plan(desired, observed, pinned, previous, managed_stacks=previous.keys(), skip=skipped.keys())
        return Prepared(desired.revision, desired, observed, pinned, plan, skipped)

    def _applied_revision(self) -> str | None:
        """The newest revision applied to any stack: the ref may only move forward from it."""
        applied = sorted(self.store.applied().values(), key=lambda a: a.applied_at)
        return applied[-1].revision if applied else None

    def _skipped(self, revision: str) -> dict[str, str]:
        out = {s: f"suspended: {why}" for s, why in self.store.suspended().items()}
        out.update({s: f"automation stopped: {why}" for s, why in self.store.stopped().items()})
        for stack, (rev, why) in self.store.quarantined().items():
            if rev == revision and stack not in out:
                out[stack] = f"commit {rev[:12]} is quarantined: {why}"
        return out

    def _pin(self, desired: DesiredState, skipped: Mapping[str, str]) -> dict[tuple[str, str], str]:
        """Every service's image pinned to a digest, verified, and offering the service's platform.

        With a trust policy the signature is checked on the digest the reference
        names (a multi-arch tag: its index, as cosign signs and sigstore's
        policy-controller verifies by default). The container is then pinned
        to the device's platform manifest in that index: content-addressed by
        the verified index, and one engine reference per platform (the engine
        keeps one image per ``repo@digest``; two platforms of one index digest
        would collide: "Cannot overwrite digest").
        """
        cache: dict[tuple[str, str, str], str] = {}
        pinned: dict[tuple[str, str], str] = {}
        for st in desired.stacks:
            if st.name in skipped:
                continue
            for svc in st.services:
                platform = self._platform_for(svc)
                key = (svc.image, svc.pull_policy, platform)
                if key not in cache:
                    try:
                        ref = self.image_policy.pinned(svc.image) if self.image_policy is not None else svc.image
                        if image_ref.is_pinned(ref):
                            ref = self._platform_pin(ref, platform)
                        resolved = self.runtime.resolve_image(ref, svc.pull_policy, platform)
                        cache[key] = resolved if resolved == ref else self._platform_pin(resolved, platform)
                    except TrustError as exc:
                        raise TrustError(f"{st.compose_file}: services.{svc.name}: {exc.message}") from None
                    except ImagePlatformError as exc:
                        where = Location(st.compose_file, key=f"services.{svc.name}.image")
                        raise ImagePlatformError(exc.message, where) from None
                    self._platforms[cache[key]] = platform
                pinned[(st.name, svc.name)] = cache[key]
        return pinned

    def _platform_pin(self, pinned: str, platform: str) -> str:
        """``repo@<index digest>`` -> ``repo@<platform manifest digest>`` (a manifest maps to itself).

        Remembered in the state store: digests never change, so a poll asks the
        registry only for a digest it has not seen (and writes nothing otherwise).
        """
        if self.platforms is None or "@sha256:" not in pinned:
            return pinned  # a local image id, or no registry to ask
        repo, digest = pinned.rsplit("@", 1)
        key = f"platform:{repo}@{digest}:{platform}"
        child = self.store.get(key)
        if child is None:
            try:
                child = self.platforms.platform_manifest(repo, digest, platform)
            except RegistryError as exc:
                # The engine may reach registries the agent cannot (mirrors, its own proxy): it can
                # still pull the platform from the index, only two platforms of it cannot coexist.
                log.warning("cannot list the platforms of %s (%s); pinning the digest as named", pinned, exc)
                return pinned
            self.store.put(key, child)
        return f"{repo}@{child}"

    # -- platform hook: the device's setting until the compose loader carries `platform:` ----------
    def _platform_for(self, svc: ServiceSpec) -> str:
        """The platform a service's image is chosen for: the service's ``platform:`` when the
        spec has one, else the device's ``device.platform``, else the engine's own."""
        per_service = getattr(svc, "platform", None)
        if isinstance(per_service, str) and per_service:
            return per_service
        if self.config.device.platform:
            return self.config.device.platform
        return self.runtime.platform()

    def _check_security(self, desired: DesiredState, root: Path) -> None:
        """The device security policy: a compromised repo must not take over the device."""
        from gitops_edge.core.security import check_stack

        problems = [
            f"{st.compose_file}: {p}" for st in desired.stacks for p in check_stack(st, self.config.security, str(root))
        ]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise TrustError(problems[0] + more)

    # -- the sync ----------------------------------------------------------------------
    def sync(self) -> SyncResult:
        started = time.monotonic()
        sync_id = self.store.start_sync()
        result = SyncResult(Outcome.ERROR, reason="interrupted")
        try:
            result = self._sync()
        except EdgeError as exc:
            result = SyncResult(outcome_for(exc), revision=self.revision_seen, reason=str(exc), error=exc)
        finally:
            try:
                self.store.finish_sync(
                    sync_id,
                    revision=result.revision,
                    outcome=result.outcome,
                    reason=result.reason,
                    actions=result.actions,
                )
            except StateStoreError as exc:  # recording must never hide the real outcome
                log.error("could not record the sync: %s", exc)
            log.info(
                "sync %s in %.2fs: %s%s",
                result.outcome.value,
                time.monotonic() - started,
                (result.revision or "")[:12],
                f" ({result.reason})" if result.reason else "",
            )
        return result

    def _sync(self) -> SyncResult:
        self.recover()
        prep = self.prepare()
        for stack, why in prep.skipped.items():
            log.info("skipping %s: %s", stack, why)
        result = SyncResult(Outcome.UNCHANGED, revision=prep.revision, plan=prep.plan)
        if prep.skipped:
            result.reason = "; ".join(f"{s}: {w}" for s, w in sorted(prep.skipped.items()))
        if prep.plan.is_noop:
            self._record_revisions(prep, prep.plan.stacks)
            if prep.skipped and not prep.plan.stacks:  # every stack is held back
                result.outcome = Outcome.SKIPPED
            return result
        held = self._held()
        if held:
            log.info("changes wait: %s", held)
            result.outcome, result.reason = Outcome.SKIPPED, held
            return result
        self.stage(prep.plan.stacks)
        failures: list[EdgeError] = []
        for sp in prep.plan.stacks:
            if sp.is_noop:
                self._record_revisions(prep, [sp])
                continue
            try:
                result.actions += self._apply_stack(prep, sp)
            except RollbackFailed as exc:
                self.store.stop_automation(sp.stack, str(exc))
                failures.append(exc)
            except ApplyError as exc:
                self.store.quarantine(sp.stack, prep.revision, exc.message.removeprefix(f"{sp.stack}: "))
                failures.append(exc)
        if failures:
            err = failures[0]
            result.outcome = Outcome.ROLLED_BACK
            result.error = err
            result.reason = "; ".join(str(f) for f in failures)
        else:
            result.outcome = Outcome.APPLIED
        return result

    def _held(self) -> str | None:
        """Why changes must wait now (a technician's lock, outside the update window), or None."""
        lock = self.store.lock()
        if lock is not None:
            return f"device locked by {lock.get('who')}: {lock.get('reason')}"
        windows = self.config.update_windows
        now = datetime.now().astimezone()
        if not in_window(now, windows):
            nxt = next_opening(now, windows)
            return "outside the update window" + (f"; next opens {nxt:%a %H:%M}" if nxt else "")
        return None

    def stage(self, stack_plans: Iterable[StackPlan]) -> None:
        """Pull every image and create networks and volumes before touching a container."""
        stack_plans = list(stack_plans)
        for image in sorted({a.image for sp in stack_plans for a in sp.actions if a.image}):
            self.runtime.pull_image(image, self._platforms.get(image))
        for sp in stack_plans:
            for net in sp.networks:
                self.runtime.ensure_network(sp.stack, net)
            for vol in sp.volumes:
                self.runtime.ensure_volume(sp.stack, vol)

    def _apply_stack(self, prep: Prepared, sp: StackPlan) -> list[str]:
        if sp.remove_stack:
            return self._remove_stack(prep, sp)
        stack = prep.desired.stack(sp.stack)
        assert stack is not None
        done = self.switch.apply(sp, stack, prep.revision)
        self._record_applied(prep, stack)
        return done

    def _remove_stack(self, prep: Prepared, sp: StackPlan) -> list[str]:
        done = []
        for a in sp.actions:
            for cid in a.container_ids:
                self.runtime.stop_container(cid)
                self.runtime.remove_container(cid)
            done.append(a.describe())
        for name in {n for n in prep.observed.networks if n.startswith(f"{sp.stack}_")}:
            self.runtime.remove_network(name)
        self.store.forget_stack(sp.stack)
        return done

    def _record_applied(self, prep: Prepared, stack: StackSpec) -> None:
        images = {svc.name: prep.pinned[(stack.name, svc.name)] for svc in stack.services}
        self.store.record_applied(stack.name, prep.revision, stack_to_json(stack), images)

    def _record_revisions(self, prep: Prepared, plans: Iterable[StackPlan]) -> None:
        """A no-op stack still moved to the new revision (e.g. only another stack changed)."""
        applied = self.store.applied()
        for sp in plans:
            if sp.remove_stack or sp.stack in prep.skipped:
                continue
            stack = prep.desired.stack(sp.stack)
            if stack is not None and (sp.stack not in applied or applied[sp.stack].revision != prep.revision):
                self._record_applied(prep, stack)

    # -- crash recovery ------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Finish or undo switches a crash interrupted (DESIGN.md §7).

        ``committing``: the new revision was healthy, so finish the commit.
        Otherwise roll back to the kept containers. A crash is not the new
        version's fault, so the same sync re-applies it; but a crash in the middle
        of a rollback the new version caused (its ``failure`` is journaled) ends
        like that rollback would have: the commit is quarantined.
        """
        notes = []
        for stack, (revision, phase, data) in self.store.journal().items():
            j = Journal(stack, revision, kept=list(data.get("kept", [])),  # type: ignore[call-overload]
                        created=list(data.get("created", [])), phase=phase,  # type: ignore[call-overload]
                        failure=str(data.get("failure") or ""),
                        creating=list(data["creating"]) if "creating" in data else None)  # type: ignore[call-overload]
            self._adopt_unjournaled(j)
            if phase == "committing":
                log.warning("recovering %s: finishing the commit of %s", stack, revision[:12])
                for k in j.kept:
                    self._remove_if_present(str(k["id"]))
                self.store.journal_clear(stack)
                notes.append(f"{stack}: finished interrupted commit of {revision[:12]}")
            else:
                log.warning("recovering %s: undoing the interrupted switch to %s", stack, revision[:12])
                try:
                    self.switch.rollback(j)
                except RollbackFailed as exc:
                    self.store.stop_automation(stack, str(exc))
                    raise
                if j.failure:
                    self.store.quarantine(stack, revision, j.failure)
                    notes.append(f"{stack}: finished interrupted rollback of {revision[:12]}: {j.failure}")
                else:
                    notes.append(f"{stack}: rolled back interrupted switch to {revision[:12]}")
        return notes

    def _adopt_unjournaled(self, j: Journal) -> None:
        """A crash between create and journal write leaves a new container the journal
        does not name; find it by its labels (this stack, the target revision) among
        the services the switch creates: an untouched container of the same revision
        (a switch that only repairs drift) is not the switch's to undo."""
        observed = self.runtime.observe()
        kept_ids = {str(k["id"]) for k in j.kept}
        for c in observed.for_stack(j.stack):
            if c.id in kept_ids or c.id in j.created:
                continue
            if j.creating is not None and c.service not in j.creating:
                continue
            if c.revision == j.revision and not c.name.endswith(KEPT_SUFFIX):
                j.created.append(c.id)
        # a kept entry whose container is gone cannot be restored; drop it
        present = {c.id for c in observed.containers}
        j.kept = [k for k in j.kept if str(k["id"]) in present]
        j.created = [cid for cid in j.created if cid in present]

    def _remove_if_present(self, cid: str) -> None:
        try:
            self.runtime.remove_container(cid)
        except EdgeError as exc:
            log.info("kept container %s already gone: %s", cid[:12], exc)

