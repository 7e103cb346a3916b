"""The container engine port: observe, create, start, stop, rename, inspect."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from gitops_edge.model.observed import ContainerState, HookRun, ObservedState
from gitops_edge.model.spec import NetworkSpec, ServiceHook, ServiceSpec, StackSpec, VolumeSpec


class ContainerRuntime(Protocol):
    def observe(self) -> ObservedState:
        """Every container carrying Compose project labels, plus networks and volumes."""
        ...

    def observe_containers(self) -> ObservedState:
        """``observe`` without networks and volumes (left empty): what a status shows, from one call."""
        ...

    def fingerprint(self, stacks: Collection[str]) -> str:
        """A digest of the containers of ``stacks`` (Compose projects) from one cheap call: it
        changes when any of them is added, removed, replaced, stopped, started or turns unhealthy."""
        ...

    def container_project(self, name: str) -> str | None:
        """The compose project of the container named exactly ``name``: ``""`` when it has no
        project label, None when there is no such container (any container, labelled or not)."""
        ...

    def platform(self) -> str:
        """The engine's own OCI platform (``linux/amd64``), the default a device runs."""
        ...

    def resolve_image(self, ref: str, pull_policy: str, platform: str | None = None) -> str:
        """Pin ``ref``: ``repo@sha256:...`` (or a local image id) per the pull policy.

        With ``platform``, the image must offer it (``ImagePlatformError`` otherwise).
        """
        ...

    def pull_image(self, pinned: str, platform: str | None = None) -> bool:
        """Make ``pinned`` present locally for ``platform``; True if it was pulled now, False if
        it was there."""
        ...

    def image_info(self, ref: str) -> tuple[str, int] | None:
        """(image id, size in bytes) of a local image, None when it is not present."""
        ...

    def images_in_use(self) -> set[str]:
        """The image ids of every container on the engine, whoever created it."""
        ...

    def remove_image(self, ref: str) -> bool:
        """Drop the reference ``ref`` (its layers go with the last reference); False when
        it was absent or the engine refused (in use). Never forced."""
        ...

    def free_space(self) -> int | None:
        """Free bytes on the engine's data root, None when it cannot be seen from here."""
        ...

    def ensure_network(self, stack: str, net: NetworkSpec) -> None: ...

    def ensure_volume(self, stack: str, vol: VolumeSpec) -> None: ...

    def create_container(
        self,
        stack: StackSpec,
        spec: ServiceSpec,
        *,
        image: str,
        config_hash: str,
        revision: str,
        name: str | None = None,
        number: int = 1,
    ) -> str:
        """Create (not start) replica ``number`` of the service (Compose's ``<project>-<service>-<number>``,
        its ``container-number`` label) with Compose labels; returns its id."""
        ...

    def start_container(self, container_id: str) -> None: ...

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None: ...

    def remove_container(self, container_id: str) -> None: ...

    def run_hook(self, container_id: str, hook: ServiceHook, timeout_s: float) -> HookRun:
        """Exec a ``post_start``/``pre_stop`` hook in the running container and wait for it
        (at most about ``timeout_s``: then its exit code is None)."""
        ...

    def remove_network(self, name: str) -> None: ...

    def rename_container(self, container_id: str, new_name: str) -> None: ...

    def set_restart_policy(self, container_id: str, policy: str) -> None:
        """``no``, ``always``, ``unless-stopped`` or ``on-failure[:N]``."""
        ...

    def inspect_state(self, container_id: str) -> ContainerState: ...

    def event_mark(self) -> float:
        """Now on the engine's event timeline; taken just before inspecting, so that
        ``wait_for_change(since=mark)`` misses nothing that happened after the inspection."""
        ...

    def wait_for_change(self, container_ids: Collection[str], since: float, timeout_s: float) -> bool:
        """Block until the engine reports a state change (health, start, exit, OOM, ...) of one
        of ``container_ids`` at or after ``since`` (True) or ``timeout_s`` passes (False).
        No polling loop: the health gate reacts as the container turns healthy."""
        ...

    def logs(self, container_id: str, tail: int) -> list[str]:
        """The container's last ``tail`` log lines (stdout and stderr), for the evidence of a failure."""
        ...
