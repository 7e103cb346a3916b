"""The agent's own multi-arch image (linux/amd64, linux/arm64, linux/arm/v7), built once per tree, kept in a registry.

``scripts/build-image --offline --platforms ... --push`` does the work (a few
minutes the first time: the arm64 and arm/v7 RUN steps run under QEMU, and
cffi and PyYAML are compiled for armv7l once per version); the index is
tagged by a hash of everything it is built from, so a rerun of the tests or
the benchmark finds it in the registry and builds nothing.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import docker

from gitops_edge.adapters.registry.client import RegistryClient
from gitops_edge.errors import ImageNotFoundError

ROOT = Path(__file__).resolve().parents[2]
AGENT_REPO = "gitops-edge-test/agent"
PLATFORMS = "linux/amd64,linux/arm64,linux/arm/v7"


def source_hash() -> str:
    """What the agent images are built from: the package, the Dockerfile and the build scripts."""
    h = hashlib.sha256(PLATFORMS.encode())
    files = [ROOT / n for n in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md",
                                "scripts/build-image", "scripts/push-index", "scripts/debian-base-image",
                                "scripts/emulated-wheels")]
    files += sorted(p for p in (ROOT / "gitops_edge").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def multiarch_agent_index(registry: str, timeout_s: float = 4800) -> str:
    """``REGISTRY/gitops-edge-test/agent:HASH``: an OCI index of the agent for amd64, arm64 and arm/v7."""
    ref = f"{registry}/{AGENT_REPO}:{source_hash()}"
    try:
        RegistryClient().resolve(ref)
        return ref
    except ImageNotFoundError:
        pass
    out = subprocess.run(
        [str(ROOT / "scripts/build-image"), "--offline", "--platforms", PLATFORMS,
         "--tag", f"{AGENT_REPO}:{source_hash()}", "--push", ref],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/build-image --platforms failed ({out.returncode}):\n{out.stdout}\n"
                           f"{out.stderr[-4000:]}")
    return ref


def pull_platform(client: docker.DockerClient, ref: str, platform: str) -> str:
    """The image id of ``platform``'s variant of the index ``ref`` (by id: the tag names one at a time)."""
    repo, _, tag = ref.rpartition(":")
    client.api.pull(repo, tag=tag, platform=platform)
    return str(client.api.inspect_image(ref)["Id"])
