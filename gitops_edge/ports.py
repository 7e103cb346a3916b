"""Ports: the small interfaces the reconciler needs from the world.

Adapters in ``gitops_edge.adapters`` implement these; unit tests of the
reconciler may use in-memory fakes. Every method raises only errors from
``gitops_edge.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gitops_edge.model.observed import ContainerState, ObservedState
from gitops_edge.model.spec import NetworkSpec, ServiceSpec, StackSpec, VolumeSpec
from gitops_edge.model.trust import Evidence, TrustRule


@dataclass(frozen=True)
class Checkout:
    """A clean work tree of one exact commit."""

    revision: str  # full commit sha
    root: Path  # work tree root
    changed: bool  # the remote ref moved since the last sync


class GitSource(Protocol):
    def remote_revision(self) -> str:
        """Ask the remote where the ref points (ls-remote); no fetch."""
        ...

    def checkout(self, applied_revision: str | None = None) -> Checkout:
        """Fetch if the ref moved and check the exact commit out, clean.

        Raises ``TrustError`` (nothing checked out) when ``source.verify`` is set
        and the commit is not signed by an allowed signer, or when, unless
        ``source.allow_rewind``, it does not descend from ``applied_revision``.
        """
        ...


class ContainerRuntime(Protocol):
    def observe(self) -> ObservedState:
        """Every container carrying Compose project labels, plus networks and volumes."""
        ...

    def resolve_image(self, ref: str, pull_policy: str) -> str:
        """Pin ``ref``: ``repo@sha256:...`` (or a local image id) per the pull policy."""
        ...

    def pull_image(self, pinned: str) -> None:
        """Make ``pinned`` present locally (no-op if it already is)."""
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
    ) -> str:
        """Create (not start) the service's container with Compose labels; returns its id."""
        ...

    def start_container(self, container_id: str) -> None: ...

    def stop_container(self, container_id: str, timeout_s: float | None = None) -> None: ...

    def remove_container(self, container_id: str) -> None: ...

    def remove_network(self, name: str) -> None: ...

    def rename_container(self, container_id: str, new_name: str) -> None: ...

    def set_restart_policy(self, container_id: str, policy: str) -> None:
        """``no``, ``always``, ``unless-stopped`` or ``on-failure[:N]``."""
        ...

    def inspect_state(self, container_id: str) -> ContainerState: ...


class ImageVerifier(Protocol):
    """Registry + signatures: resolve a reference to a digest and check its evidence.

    Implementations fail closed: any error while discovering or checking a
    signature is a refusal (``TrustError``) or, when the registry cannot be
    reached, a ``RegistryError`` (transient); never an allowed verdict.
    """

    def resolve_digest(self, ref: str) -> str:
        """The manifest digest (``sha256:...``) the registry serves for ``ref``."""
        ...

    def verify(self, repository: str, digest: str, rule: TrustRule) -> tuple[Evidence, ...]:
        """Evidence that ``repository@digest`` is signed as ``rule`` demands.

        Raises ``TrustError`` (with the reason) when no acceptable signature exists.
        """
        ...
