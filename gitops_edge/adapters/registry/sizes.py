"""How many bytes a pull will bring: the layer sizes the registry's manifest lists.

For the free-space check before STAGE (``engine/retention.py``). A multi-platform
index is resolved to the platform the image is pulled for (the service's, the
device's, else linux and the running CPU, as the engine would pull it). Any
failure is "unknown" (None), never an error: the check then falls back to
``retention.min_free_space`` alone, and the pull itself reports registry
problems as it always did.

``RegistrySizes`` is also the engine's ``PlatformResolver``: both share one
``RegistryClient``, made on the first update, so a process that changes
nothing never imports ``requests``.
"""

from __future__ import annotations

import logging
import platform as host
from typing import TYPE_CHECKING

from gitops_edge.core.image_ref import parse
from gitops_edge.core.platform import choose, from_descriptor, from_machine, parse_platform
from gitops_edge.errors import EdgeError
from gitops_edge.model.trust import RegistriesConfig

if TYPE_CHECKING:
    from gitops_edge.adapters.registry.client import RegistryClient

log = logging.getLogger(__name__)


class RegistrySizes:
    """An ``ImageSizes`` and ``PlatformResolver`` on the OCI distribution API (one client,
    credentials as for signatures)."""

    def __init__(self, registries: RegistriesConfig | None = None, arch: str | None = None) -> None:
        self._registries = registries
        self._client: RegistryClient | None = None  # requests is imported on the first update, not at start
        self._host = from_machine("linux", arch or host.machine())

    @property
    def client(self) -> RegistryClient:
        if self._client is None:
            from gitops_edge.adapters.registry.client import RegistryClient

            self._client = RegistryClient(self._registries)
        return self._client

    def platform_manifest(self, repository: str, reference: str, platform: str) -> str:
        """``RegistryClient.platform_manifest``, with the client made on first use."""
        return self.client.platform_manifest(repository, reference, platform)

    def pull_size(self, pinned: str, platform: str | None = None) -> int | None:
        """Compressed bytes of the layers and config of ``repo@sha256:...`` for ``platform``
        (default: this machine's); None when unknown."""
        image = parse(pinned)
        if image.digest is None:
            return None
        try:
            doc = self.client.manifest(image.repository, image.digest).json()
            entries = doc.get("manifests")
            if isinstance(entries, list):  # an index: the platform's manifest
                offered = {from_descriptor(e["platform"]): str(e.get("digest")) for e in entries
                           if isinstance(e, dict) and isinstance(e.get("platform"), dict)}
                chosen = choose(parse_platform(platform) if platform else self._host, offered)
                if chosen is None:
                    return None
                doc = self.client.manifest(image.repository, offered[chosen]).json()
            return _sum_sizes(doc)
        except (EdgeError, ValueError) as exc:
            log.debug("size of %s unknown: %s", pinned, exc)
            return None


def _sum_sizes(doc: dict[str, object]) -> int | None:
    layers = doc.get("layers")
    if not isinstance(layers, list):
        return None
    total = 0
    for blob in [*layers, doc.get("config")]:
        size = blob.get("size") if isinstance(blob, dict) else None
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            total += size
    return total
