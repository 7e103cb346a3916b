"""How many bytes a pull will bring: the layer sizes the registry's manifest lists.

For the free-space check before STAGE (``engine/retention.py``). A multi-platform
index is resolved to this machine's platform (linux and the running CPU, as the
engine would pull it). Any failure is "unknown" (None), never an error: the check
then falls back to ``retention.min_free_space`` alone, and the pull itself reports
registry problems as it always did.
"""

from __future__ import annotations

import logging
import platform
from typing import TYPE_CHECKING

from gitops_edge.core.image_ref import parse
from gitops_edge.errors import EdgeError
from gitops_edge.model.trust import RegistriesConfig

if TYPE_CHECKING:
    from gitops_edge.adapters.registry.client import RegistryClient

log = logging.getLogger(__name__)

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "armv6l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


class RegistrySizes:
    """An ``ImageSizes`` on the OCI distribution API (one client, credentials as for signatures)."""

    def __init__(self, registries: RegistriesConfig | None = None, arch: str | None = None) -> None:
        self._registries = registries
        self._client: RegistryClient | None = None  # requests is imported on the first update, not at start
        self._arch = arch or _ARCH.get(platform.machine().lower(), platform.machine().lower())

    def pull_size(self, pinned: str) -> int | None:
        """Compressed bytes of the layers and config of ``repo@sha256:...``; None when unknown."""
        image = parse(pinned)
        if image.digest is None:
            return None
        if self._client is None:
            from gitops_edge.adapters.registry.client import RegistryClient

            self._client = RegistryClient(self._registries)
        try:
            doc = self._client.manifest(image.repository, image.digest).json()
            entries = doc.get("manifests")
            if isinstance(entries, list):  # an index: this platform's manifest
                chosen = next((e for e in entries if isinstance(e, dict) and _platform_matches(e, self._arch)), None)
                if chosen is None:
                    return None
                doc = self._client.manifest(image.repository, str(chosen.get("digest"))).json()
            return _sum_sizes(doc)
        except EdgeError as exc:
            log.debug("size of %s unknown: %s", pinned, exc)
            return None


def _platform_matches(entry: dict[str, object], arch: str) -> bool:
    plat = entry.get("platform")
    return isinstance(plat, dict) and plat.get("os") == "linux" and plat.get("architecture") == arch


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
