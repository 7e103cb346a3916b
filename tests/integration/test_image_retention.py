"""Image retention on the real engine: ten updates leave only the images of the current and
the kept rollback revisions; an image the agent did not pull, or that another container uses,
stays; short of space, the update fails before anything stops.

The small-disk case runs on a second, private engine whose data root is a 64 MB
tmpfs (``tests/support/small_engine.py``); the decision with a margin larger than
the disk is also checked on the shared engine.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import docker
import pytest

from tests.integration.agent_harness import Device, assert_clean_failure
from tests.support.images import build_image, push

VERSIONS = 10


def one_service(image: str) -> str:
    return f"""\
services:
  app:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


@pytest.fixture
def versions(docker_client: docker.DockerClient, registry: str) -> Iterator[list[tuple[str, str]]]:
    """Ten versions of a private repository, in the registry only: (tag ref, pinned ref)."""
    repo = f"{registry}/edge/ret{uuid.uuid4().hex[:8]}"
    out = []
    for i in range(VERSIONS):
        build_image(docker_client, repo, f"v{i}", version=f"{repo}-{i}")
        digest = push(docker_client, f"{repo}:v{i}")
        out.append((f"{repo}:v{i}", f"{repo}@{digest}"))
    for tag, _ in out:  # the agent must pull them itself
        docker_client.images.remove(tag, force=True)
    yield out
    for tag, pinned in out:
        for ref in (pinned, tag):
            try:
                docker_client.images.remove(ref, force=True)
            except docker.errors.APIError:
                pass


def present(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def test_ten_updates_keep_only_current_and_rollback_images_and_a_full_disk_stops_nothing(
        device: Device, stack_name: str, versions: list[tuple[str, str]], docker_client: docker.DockerClient) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.health = "{timeout: 30s, stable_for: 0s}"
    device.extra_config = "retention: {rollback_revisions: 3}\n"
    docker_client.images.pull(versions[3][1])  # an operator pulled v3: not the agent's to remove
    foreign = None
    try:
        for i, (tag, _) in enumerate(versions):
            device.commit({f"{s}/compose.yaml": one_service(tag)}, f"v{i}")
            out = device.cli("sync")
            assert out.returncode == 0, out.stderr
            if i == 0:  # a container the agent does not own uses the agent's first image
                foreign = docker_client.containers.create(versions[0][1], ["true"], name=f"{s}-foreign")
        kept = {i for i, (_, pinned) in enumerate(versions) if present(docker_client, pinned)}
        # rollback window of 3 (v7 v8 v9), v0 in use by the foreign container, v3 not pulled by the agent
        assert kept == {0, 3, 7, 8, 9}, kept
        status = device.status()
        assert status["images"]["pulled"] == 4 and status["images"]["freed_bytes"] > 0, status["images"]

        # a disk too small for the next pull: older rollback images go first, then the update
        # fails before anything stops, as a retryable engine error
        running = {c.name: c.id for c in device.containers(s).values()}
        device.extra_config = "retention: {rollback_revisions: 3, min_free_space: 100TB}\n"
        device.commit({f"{s}/compose.yaml": one_service(versions[5][0])}, "back to v5")
        out = device.cli("sync")
        assert_clean_failure(out, 4, "not enough free space")
        assert {c.name: c.id for c in device.containers(s).values()} == running
        kept = {i for i, (_, pinned) in enumerate(versions) if present(docker_client, pinned)}
        assert kept == {0, 3, 9}, kept  # v7 and v8 went; the running v9, in-use v0 and foreign v3 stay
        last = json.loads(device.cli("history", "--json").stdout)[0]
        assert last["outcome"] == "error" and last["step"] == "stage", last
    finally:
        if foreign is not None:
            foreign.remove(force=True)


def test_the_registry_tells_how_big_a_pull_is(versions: list[tuple[str, str]], docker_client: docker.DockerClient,
                                             registry: str) -> None:
    """Compressed layers and config, from the real registry's manifest: smaller than the image unpacked."""
    from gitops_edge.adapters.registry.sizes import RegistrySizes
    from gitops_edge.model.trust import RegistriesConfig

    sizes = RegistrySizes(RegistriesConfig(insecure=(registry,)))
    tag, pinned = versions[0]
    size = sizes.pull_size(pinned)
    docker_client.images.pull(pinned)
    unpacked = docker_client.images.get(pinned).attrs["Size"]
    assert size is not None and 0 < size < unpacked, (size, unpacked)
    assert sizes.pull_size(f"{tag.rsplit(':', 1)[0]}@sha256:{'0' * 64}") is None  # unknown, never an error


def test_a_small_disk_fails_the_update_before_anything_stops_and_a_later_sync_applies_it(
        device: Device, stack_name: str, versions: list[tuple[str, str]]) -> None:
    """A second engine on a 64 MB tmpfs (tests/support/small_engine.py), filled up but for a little:
    the next update needs more than is free (its layer sizes from the registry), so the sync fails at
    STAGE with exit 4 and the running container stays; once space is back, the same commit applies."""
    import os

    from tests.support.small_engine import small_engine

    s = stack_name
    with small_engine(64) as (url, root):
        device.extra_env = {"DOCKER_HOST": url}
        device.health = "{timeout: 30s, stable_for: 0s}"
        client = docker.DockerClient(base_url=url, timeout=30)
        none = one_service("IMAGE").replace("    command:", "    network_mode: none\n    command:")
        rev0 = device.commit({f"{s}/compose.yaml": none.replace("IMAGE", versions[0][0])}, "v0")
        out = device.cli("sync")
        assert out.returncode == 0, out.stderr
        running = {c.name: c.id for c in client.containers.list(all=True)}
        assert len(running) == 1

        st = os.statvfs(root)
        filler = root / "filler"
        with filler.open("wb") as f:  # leave about 512 KiB free: less than one busybox layer, unpacked
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 512 * 1024))
        rev1 = device.commit({f"{s}/compose.yaml": none.replace("IMAGE", versions[1][0])}, "v1")
        out = device.cli("sync")
        assert_clean_failure(out, 4, "not enough free space")
        assert {c.name: c.id for c in client.containers.list(all=True)} == running
        assert all(c.labels["io.gitops-edge.revision"] == rev0 for c in client.containers.list(all=True))

        filler.unlink()  # space came back: the same commit applies (the error was retryable)
        out = device.cli("sync")
        assert out.returncode == 0, out.stderr
        [c] = client.containers.list(all=True)
        assert c.labels["io.gitops-edge.revision"] == rev1 and c.status == "running"
        client.close()
