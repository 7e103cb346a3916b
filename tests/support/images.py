"""Test images: the package's tiny busybox images, plus pushing to the loopback registry."""

from __future__ import annotations

import time

import docker

from gitops_edge.demo.tinyimage import build_image, rootfs_tar

__all__ = ["build_image", "push", "rootfs_tar"]


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
