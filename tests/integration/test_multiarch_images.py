"""Multi-arch test images are real: an OCI index on the loopback registry that the engine pulls per platform.

The index holds Debian's static busybox for linux/amd64, linux/arm64 and
linux/arm/v7; each platform manifest's config says its own architecture,
and the arm images run under QEMU user emulation (binfmt_misc, set up by
scripts/bootstrap), so ``uname -m`` inside them names the emulated CPU.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import docker
import pytest

from gitops_edge.adapters.registry.client import OCI_INDEX, OCI_MANIFEST, RegistryClient
from gitops_edge.core.platform import parse_platform
from gitops_edge.errors import ImagePlatformError
from tests.support.images import MultiArch, push_multiarch

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def multiarch(registry: str) -> MultiArch:
    return push_multiarch(f"{registry}/edge/multi-{uuid.uuid4().hex[:8]}:v1", version="m1")


@pytest.fixture
def pulled(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    refs: list[str] = []
    yield refs
    for ref in refs:
        try:
            docker_client.images.remove(ref, force=True)
        except docker.errors.APIError:
            pass


def test_the_registry_serves_an_oci_index_under_the_tag(multiarch: MultiArch) -> None:
    client = RegistryClient()
    assert client.resolve(multiarch.ref) == multiarch.index  # the tag resolves to the index digest
    index = client.manifest(multiarch.repository, "v1")
    assert index.media_type == OCI_INDEX and index.digest == multiarch.index
    entries = index.json()["manifests"]
    assert isinstance(entries, list)
    assert [(e["digest"], e["platform"]) for e in entries] == [
        (multiarch.manifests["linux/amd64"], {"architecture": "amd64", "os": "linux"}),
        (multiarch.manifests["linux/arm64/v8"], {"architecture": "arm64", "os": "linux", "variant": "v8"}),
        (multiarch.manifests["linux/arm/v7"], {"architecture": "arm", "os": "linux", "variant": "v7"}),
    ]
    # Each platform manifest is served by digest, and its config says the same platform.
    for entry in entries:
        m = client.manifest(multiarch.repository, entry["digest"])
        assert m.media_type == OCI_MANIFEST
        config = json.loads(client.blob(multiarch.repository, m.json()["config"]["digest"]))  # type: ignore[index]
        assert {k: config.get(k) for k in entry["platform"]} == entry["platform"]


def test_platform_resolution_by_index_and_by_platform_manifest(multiarch: MultiArch) -> None:
    client = RegistryClient()
    arm64 = multiarch.manifests["linux/arm64/v8"]
    assert client.platform_manifest(multiarch.repository, "v1", parse_platform("linux/arm64")) == arm64
    assert client.platform_manifest(multiarch.repository, multiarch.index, parse_platform("armhf")) \
        == multiarch.manifests["linux/arm/v7"]
    # A single-platform manifest is its own (and only) platform, read from its config.
    assert client.platforms(multiarch.repository, arm64) == {parse_platform("linux/arm64"): arm64}
    with pytest.raises(ImagePlatformError, match=r"has no linux/amd64 variant \(it offers linux/arm64\)"):
        client.platform_manifest(multiarch.repository, arm64, parse_platform("linux/amd64"))
    with pytest.raises(ImagePlatformError, match=r"no linux/riscv64 .*linux/amd64, linux/arm/v7, linux/arm64"):
        client.platform_manifest(multiarch.repository, "v1", parse_platform("linux/riscv64"))


@pytest.mark.parametrize(("platform", "machine", "arch"), [
    ("linux/amd64", "x86_64", "amd64"),
    ("linux/arm64", "aarch64", "arm64"),
    ("linux/arm/v7", "armv7l", "armhf"),
])
def test_the_engine_pulls_and_runs_each_platform(
    docker_client: docker.DockerClient, multiarch: MultiArch, pulled: list[str], platform: str, machine: str,
    arch: str,
) -> None:
    ref = f"{multiarch.repository}@{multiarch.index}"
    pulled.append(ref)
    docker_client.api.pull(multiarch.repository, tag=multiarch.index, platform=platform)
    image = docker_client.api.inspect_image(ref)
    want = parse_platform(platform)
    assert (image["Os"], image["Architecture"], image.get("Variant", "")) == (
        want.os, want.architecture, want.variant or ("v8" if want.architecture == "arm64" else ""))
    out = docker_client.containers.run(ref, ["sh", "-c", "uname -m; cat /arch /version"], remove=True,
                                       network_mode="none")
    assert out.decode().split() == [machine, arch, "m1"]
