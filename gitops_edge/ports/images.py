"""The image verifier port: registry digests and signature evidence."""

from __future__ import annotations

from typing import Protocol

from gitops_edge.model.trust import Evidence, TrustRule


class PlatformResolver(Protocol):
    """A registry that lists the platforms of a multi-arch image (an OCI index or manifest list)."""

    def platform_manifest(self, repository: str, reference: str, platform: str) -> str:
        """The single-platform manifest digest ``platform`` runs from ``reference`` (itself when
        it is not an index); ``ImagePlatformError`` when the image has no such platform."""
        ...


class ImageVerifier(Protocol):
    """Registry + signatures: resolve a reference to a digest and check its evidence.

    Implementations fail closed: any error while discovering or checking a
    signature is a refusal (``TrustError``) or, when the registry cannot be
    reached, a ``RegistryError`` (transient); never an allowed verdict.
    """

    def resolve_digest(self, ref: str) -> str:
        """The manifest digest (``sha256:...``) the registry serves for ``ref``."""
        ...

    def verify(self, repository: str, digest: str, rule: TrustRule, *, tag: str | None = None) -> tuple[Evidence, ...]:
        """Evidence that ``repository@digest`` is signed as ``rule`` demands.

        ``tag`` is the tag the image was referenced by, if any (an ``exact``
        signed identity compares it).

        Raises ``TrustError`` (with the reason) when no acceptable signature exists.
        """
        ...


class ImageSizes(Protocol):
    """What a pull will bring (the free-space check before STAGE)."""

    def pull_size(self, pinned: str, platform: str | None = None) -> int | None:
        """Compressed bytes of ``repo@sha256:...``'s layers for ``platform`` (default: this
        machine's); None when unknown."""
        ...
