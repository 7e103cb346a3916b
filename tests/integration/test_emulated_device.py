"""An emulated Raspberry Pi: the arm64 and arm/v7 agent images, under QEMU, keep a multi-arch stack on the real engine.

``scripts/build-image --offline --platforms linux/amd64,linux/arm64,linux/arm/v7``
builds the agent for three platforms (the ARM ones from Debian arm64 and armhf
bases, their RUN steps under QEMU user emulation; cffi and PyYAML, which have
no armv7l wheel on PyPI, compiled from their sdists under emulation, cached by
version) and pushes one OCI index under one tag to the test registry. The
engine pulls each platform's variant of that index and runs it: the agent's
Python is aarch64 or 32-bit ARM code, emulated. Its device config says
``platform: linux/arm64`` (or ``linux/arm/v7``), as a Pi's engine would report,
so it pulls and runs that variant of the stack's images too (emulated as
well): the arm64 and the arm/v7 agent each through deploy, update and an
automatic rollback of a release that dies; the amd64 agent through a deploy.

The module is marked ``slow`` (``scripts/test --slow`` runs it): the index is
built once per tree (tagged by the hash of its sources, kept in the registry),
15-30 minutes here the first time, and the device walks themselves take a few
minutes, every agent command starting an emulated Python.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from gitops_edge.adapters.registry.client import RegistryClient
from tests.conftest import commit_files
from tests.support.agent_image import multiarch_agent_index, pull_platform
from tests.support.images import push_multiarch

# All need the multi-arch agent image: built once per tree, 15-30 minutes on 2 shared cores
# (the ARM images under emulation), so the module runs only with `scripts/test --slow`.
pytestmark = [pytest.mark.docker, pytest.mark.slow]

ARM64 = "linux/arm64/v8"
ARM_V7 = "linux/arm/v7"
# OCI platform -> (the manifest key push_multiarch records, `uname -m`, Debian architecture in /arch)
RUNS_AS = {"linux/amd64": ("linux/amd64", "x86_64", "amd64"),
           "linux/arm64": (ARM64, "aarch64", "arm64"),
           ARM_V7: (ARM_V7, "armv7l", "armhf")}
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


@pytest.fixture(scope="module")
def agent_index(registry: str) -> str:
    try:
        return multiarch_agent_index(registry)
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_the_agent_index_offers_amd64_arm64_and_arm_v7(agent_index: str) -> None:
    repo, _, tag = agent_index.rpartition(":")
    platforms = RegistryClient().platforms(repo, tag)
    assert sorted(str(p) for p in platforms) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]


# The C extensions a 32-bit Pi has no PyPI wheel for (cffi, PyYAML with libyaml) and the Rust one.
EXTENSIONS = ("import _cffi_backend, yaml, cryptography.hazmat.bindings._rust; "
              "from cryptography.hazmat.primitives.asymmetric import ec; ec.generate_private_key(ec.SECP256R1()); "
              "print(_cffi_backend.__version__, yaml.__with_libyaml__, yaml.__version__)")


@pytest.mark.parametrize("platform", ["linux/arm64", ARM_V7])
def test_the_arm_agents_run_emulated_with_their_native_extensions(
    docker_client: docker.DockerClient, agent_index: str, platform: str,
) -> None:
    image = pull_platform(docker_client, agent_index, platform)
    attrs = docker_client.api.inspect_image(image)
    assert "/".join(v for v in (attrs["Os"], attrs["Architecture"], attrs.get("Variant")) if v) in (
        platform, RUNS_AS[platform][0])
    machine = RUNS_AS[platform][1]
    out = docker_client.containers.run(
        image, entrypoint=["sh", "-c"],
        command=[f"uname -m; python3 -c 'import platform; print(platform.machine())'; gitops-edge --version; "
                 f"python3 -c '{EXTENSIONS}'"],
        remove=True, network_mode="none",
    ).decode().split("\n")
    assert out[:2] == [machine, machine]
    assert out[2].startswith("gitops-edge ")
    # The host's versions (what the wheels were pinned to), PyYAML built with libyaml.
    assert out[3].split() == [importlib.metadata.version("cffi"), "True", importlib.metadata.version("PyYAML")], out


@pytest.fixture
def emulated_device(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[dict[str, object]]:
    """The run arguments of an arm64 agent container: socket, state volume, config and fleet repo."""
    volume = f"gitops-edge-pi-{uuid.uuid4().hex[:8]}"
    docker_client.volumes.create(volume, labels={"gitops-edge-test": "emulated-device"})
    conf = tmp_path / "etc"
    conf.mkdir()
    repo = tmp_path / "fleet"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, timeout=30)
    yield {"volume": volume, "conf": conf, "repo": repo}
    try:
        docker_client.volumes.get(volume).remove(force=True)
    except docker.errors.NotFound:
        pass


def agent_sync(client: docker.DockerClient, image: str, device: dict[str, object]) -> tuple[int, str]:
    """One ``gitops-edge sync`` in an agent container, as deploy/compose.yaml runs it."""
    c = client.containers.run(
        image, ["sync"], detach=True, read_only=True, init=True,
        network_mode="host",  # the test registry is on the host's loopback, as a Pi's would be on its LAN
        tmpfs={"/tmp": "size=64m,mode=1777"}, cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(device["volume"]): {"bind": "/var/lib/gitops-edge", "mode": "rw"},
            str(device["conf"]): {"bind": "/etc/gitops-edge", "mode": "ro"},
            str(device["repo"]): {"bind": "/fleet", "mode": "ro"},
        },
        labels={"gitops-edge-test": "emulated-device"},
    )
    try:
        code = int(c.wait(timeout=600)["StatusCode"])
        return code, c.logs().decode(errors="replace")
    finally:
        c.remove(force=True)


@pytest.mark.parametrize("platform", ["linux/arm64", ARM_V7])
def test_an_emulated_pi_deploys_updates_and_rolls_back_a_multi_arch_stack(
    docker_client: docker.DockerClient, registry: str, agent_index: str, emulated_device: dict[str, object],
    stack_name: str, cleanup_stacks: list[str], platform: str,
) -> None:
    """A 64-bit Pi (linux/arm64) and a 32-bit one (linux/arm/v7): their agent image runs their stack's variant."""
    cleanup_stacks.append(stack_name)
    agent = pull_platform(docker_client, agent_index, platform)
    key, machine, deb_arch = RUNS_AS[platform]
    repo = f"{registry}/edge/pi-{uuid.uuid4().hex[:8]}"
    v1 = push_multiarch(f"{repo}:v1", version="v1", cmd=IDLE)  # amd64, arm64 and arm/v7
    v2 = push_multiarch(f"{repo}:v2", version="v2", cmd=IDLE)
    bad = push_multiarch(f"{repo}:v3", version="v3", cmd=["sh", "-c", "exit 3"])
    Path(str(emulated_device["conf"]), "config.yaml").write_text(
        f"device: {{id: pi-emulated-{deb_arch}, platform: {platform}}}\n"
        "source: {url: 'file:///fleet', ref: main, path: devices/pi}\n"
        "state_dir: /var/lib/gitops-edge\n"
        "health: {timeout: 60s, stable_for: 2s}\n"
    )
    fleet = Path(str(emulated_device["repo"]))

    def release(image: str) -> str:
        return commit_files(fleet, {f"devices/pi/{stack_name}/compose.yaml":
                                    f"services:\n  app:\n    image: {image}\n    restart: unless-stopped\n"})

    def running() -> tuple[str, list[str]]:
        (c,) = docker_client.containers.list(filters={"label": f"com.docker.compose.project={stack_name}"})
        code, out = c.exec_run(["sh", "-c", "uname -m; cat /arch /version"])
        assert code == 0, out
        return c.attrs["Config"]["Image"], out.decode().split()

    # Deploy.
    release(v1.ref)
    code, log = agent_sync(docker_client, agent, emulated_device)
    assert code == 0, log
    assert running() == (f"{v1.repository}@{v1.manifests[key]}", [machine, deb_arch, "v1"])
    # Update.
    rev2 = release(v2.ref)
    code, log = agent_sync(docker_client, agent, emulated_device)
    assert code == 0, log
    assert running() == (f"{v2.repository}@{v2.manifests[key]}", [machine, deb_arch, "v2"])
    # A release whose container dies: rolled back to v2, exit 1.
    release(bad.ref)
    code, log = agent_sync(docker_client, agent, emulated_device)
    assert code == 1, log
    assert "rolled back" in log.lower() or "rolled_back" in log.lower(), log
    assert running() == (f"{v2.repository}@{v2.manifests[key]}", [machine, deb_arch, "v2"])
    (c,) = docker_client.containers.list(filters={"label": f"com.docker.compose.project={stack_name}"})
    assert c.labels["io.gitops-edge.revision"] == rev2
    # The agent's own status, read in an emulated container, says the same.
    c2 = docker_client.containers.run(
        agent, ["status", "--json"], remove=True, read_only=True, network_mode="none",
        volumes={str(emulated_device["volume"]): {"bind": "/var/lib/gitops-edge", "mode": "rw"},
                 str(emulated_device["conf"]): {"bind": "/etc/gitops-edge", "mode": "ro"}},
    )
    stacks = {s["stack"]: s for s in json.loads(c2)["stacks"]}
    assert stacks[stack_name]["revision"] == rev2


def test_the_amd64_agent_of_the_same_index_deploys_the_amd64_variant_of_a_multi_arch_stack(
    docker_client: docker.DockerClient, registry: str, agent_index: str, emulated_device: dict[str, object],
    stack_name: str, cleanup_stacks: list[str],
) -> None:
    """The index's third platform, native: a PC or a VM runs the same stack's amd64 variant."""
    cleanup_stacks.append(stack_name)
    platform = "linux/amd64"
    agent = pull_platform(docker_client, agent_index, platform)
    key, machine, deb_arch = RUNS_AS[platform]
    v1 = push_multiarch(f"{registry}/edge/pi32-{uuid.uuid4().hex[:8]}:v1", version="v1", cmd=IDLE)
    assert set(v1.manifests) == {"linux/amd64", ARM64, ARM_V7}
    Path(str(emulated_device["conf"]), "config.yaml").write_text(
        f"device: {{id: device-{deb_arch}, platform: {platform}}}\n"
        "source: {url: 'file:///fleet', ref: main, path: devices/d}\n"
        "state_dir: /var/lib/gitops-edge\n"
        "health: {timeout: 60s, stable_for: 2s}\n"
    )
    compose = f"services:\n  app:\n    image: {v1.ref}\n    restart: unless-stopped\n"
    rev = commit_files(Path(str(emulated_device["repo"])), {f"devices/d/{stack_name}/compose.yaml": compose})
    code, log = agent_sync(docker_client, agent, emulated_device)
    assert code == 0, log
    (c,) = docker_client.containers.list(filters={"label": f"com.docker.compose.project={stack_name}"})
    assert c.attrs["Config"]["Image"] == f"{v1.repository}@{v1.manifests[key]}"
    assert c.labels["io.gitops-edge.revision"] == rev
    code_, out = c.exec_run(["sh", "-c", "uname -m; cat /arch /version"])
    assert code_ == 0, out
    assert out.decode().split() == [machine, deb_arch, "v1"]
