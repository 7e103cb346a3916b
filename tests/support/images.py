"""Test images: the package's tiny busybox images, plus pushing to the loopback registry."""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from gitops_edge.adapters.registry.client import RegistryClient, sha256_digest
from gitops_edge.demo.tinyimage import (
    BUSYBOX,
    DEBIAN_PLATFORMS,
    OCI_INDEX,
    OCI_MANIFEST,
    build_image,
    oci_image,
    oci_index,
    rootfs_tar,
)

__all__ = ["MultiArch", "build_image", "busybox_for", "push", "push_multiarch", "rootfs_tar"]


def push(client: docker.DockerClient, ref: str) -> str:
    """Push ``ref`` to its registry; returns the manifest digest (``sha256:...``)."""
    repo, _, tag = ref.rpartition(":")
    for attempt in range(3):
        out = client.images.push(repo, tag=tag, stream=True, decode=True)
        digest = None
        error = None
        for line in out:
            if "error" in line:
                error = line["error"]
            aux = line.get("aux") or {}
            if "Digest" in aux:
                digest = aux["Digest"]
        if digest:
            return str(digest)
        time.sleep(0.5 * (attempt + 1))
    raise RuntimeError(f"push of {ref} failed: {error}")


# -- multi-arch images: an OCI index of busybox-static per architecture -------------------

CACHE = Path(__file__).resolve().parents[2] / ".bench-out" / "busybox"
ALL_ARCHES = ("amd64", "arm64", "armhf")  # Debian names: linux/amd64, linux/arm64(/v8), linux/arm/v7


def busybox_for(deb_arch: str) -> str:
    """Debian's static busybox for ``deb_arch``: the host's own, else the .deb from Debian's
    archive (``dpkg --add-architecture``, done by scripts/bootstrap), fetched once and cached."""
    if deb_arch == subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                                  check=True).stdout.strip():
        return BUSYBOX
    target = CACHE / deb_arch / "bin" / "busybox"
    if target.exists():
        return str(target)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp, open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return str(target)
        dl = subprocess.run(["apt-get", "download", f"busybox-static:{deb_arch}"], cwd=tmp,
                            capture_output=True, text=True, timeout=300)
        debs = list(Path(tmp).glob("busybox-static_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download busybox-static:{deb_arch} failed (run scripts/bootstrap, which "
                               f"adds the architecture): {dl.stderr.strip()[-500:]}")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), f"{tmp}/root"], check=True, timeout=120)
        (CACHE / deb_arch).mkdir(exist_ok=True)
        os.replace(f"{tmp}/root/bin", CACHE / deb_arch / "bin")
    return str(target)


@dataclass(frozen=True)
class MultiArch:
    ref: str  # repository:tag, the tag serving the index
    index: str  # the index digest (what the tag resolves to; what cosign signs by default)
    manifests: dict[str, str]  # OCI platform ("linux/arm64") -> its single-platform manifest digest

    @property
    def repository(self) -> str:
        return self.ref.rpartition(":")[0]


def push_multiarch(
    ref: str,
    *,
    version: str,
    arches: tuple[str, ...] = ALL_ARCHES,
    cmd: list[str] | None = None,
    healthcheck: list[str] | None = None,
    extra_files: dict[str, str] | None = None,
) -> MultiArch:
    """Push one busybox image per Debian architecture and an OCI index over them to ``ref``.

    Blobs, then each platform manifest by digest, then the index under the tag:
    the order a registry demands (an index may only name manifests it holds).
    Each image's ``/version`` is ``version``, and ``/arch`` its Debian architecture.
    """
    repo, _, tag = ref.rpartition(":")
    client = RegistryClient()
    pairs: list[tuple[bytes, dict[str, str]]] = []
    manifests: dict[str, str] = {}
    for arch in arches:
        platform = DEBIAN_PLATFORMS[arch]
        files = {"/arch": arch + "\n", **(extra_files or {})}
        rootfs = rootfs_tar(version, files, busybox=busybox_for(arch))
        manifest, blobs = oci_image(rootfs, platform, cmd=cmd, healthcheck=healthcheck)
        for data in blobs.values():
            client.push_blob(repo, data)
        digest = client.push_manifest(repo, sha256_digest(manifest), manifest, OCI_MANIFEST)
        pairs.append((manifest, platform))
        name = "/".join(v for v in (platform["os"], platform["architecture"], platform.get("variant")) if v)
        manifests[name] = digest
    index = oci_index(pairs)
    digest = client.push_manifest(repo, tag, index, OCI_INDEX)
    return MultiArch(ref, digest, manifests)
