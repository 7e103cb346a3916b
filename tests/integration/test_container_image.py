"""The container image: built here from the Dockerfile, it runs the agent read-only and syncs a stack.

No registry can be pulled from on these machines, so the image is built by
``scripts/build-image --offline``: the base is a local Debian image made with
debootstrap (``scripts/debian-base-image``, a few minutes once per machine, then
cached) and the wheels come from the host's pip. The agent image is tagged by a
hash of what it is built from, so an unchanged tree reuses it.

The containerized agent gets what deploy/compose.yaml gives it: a read-only
root file system, a tmpfs /tmp, the Docker socket, a state volume and its
config mounted read-only, and follows a Git repository mounted into it
(``file://``). It must deploy the stack through the socket and its image's
HEALTHCHECK (``/healthz`` of ``gitops-edge run``) must turn healthy.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import commit_files
from tests.integration.agent_harness import ROOT
from tests.support.images import build_image

pytestmark = pytest.mark.docker

BASE_IMAGE = "gitops-edge-test/debian-python:bookworm"
IMAGE_REPO = "gitops-edge-test/agent"
APP_REPO = "gitops-edge-test/ctr-app"
IDLE = '["sh", "-c", "trap \'exit 0\' TERM; while true; do sleep 1; done"]'


def _source_hash() -> str:
    h = hashlib.sha256()
    files = [ROOT / n for n in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")]
    files += sorted(p for p in (ROOT / "gitops_edge").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def agent_image(docker_client: docker.DockerClient) -> str:
    """The agent image of this tree (built once per tree; the Debian base once per machine)."""
    ref = f"{IMAGE_REPO}:{_source_hash()}"
    try:
        docker_client.images.get(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    try:
        out = subprocess.run(
            [str(ROOT / "scripts/build-image"), "--offline", "--base", BASE_IMAGE, "--tag", ref],
            cwd=ROOT, capture_output=True, text=True, timeout=1200,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("scripts/build-image --offline took more than 20 minutes")
    if out.returncode != 0:
        pytest.fail(f"scripts/build-image --offline failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    print(out.stdout)  # timings of the base, the wheelhouse and the image, shown with -s
    return ref


@pytest.fixture
def app_image(docker_client: docker.DockerClient) -> Iterator[str]:
    tag = "v" + uuid.uuid4().hex[:8]
    build_image(docker_client, APP_REPO, tag, version=tag, cmd=["sh", "-c", "trap 'exit 0' TERM; sleep 1d & wait"])
    ref = f"{APP_REPO}:{tag}"
    yield ref
    try:
        docker_client.images.remove(ref, force=True)
    except docker.errors.APIError:
        pass


@pytest.fixture
def run_agent(docker_client: docker.DockerClient) -> Iterator[Callable[..., docker.models.containers.Container]]:
    """Start the agent container; it and its state volume are removed afterwards."""
    made: list[tuple[docker.models.containers.Container, str]] = []

    def start(image: str, volume: str, **kwargs: object) -> docker.models.containers.Container:
        docker_client.volumes.create(volume, labels={"gitops-edge-test": "container-image"})
        try:
            c = docker_client.containers.run(image, detach=True, **kwargs)  # type: ignore[arg-type]
        except Exception:
            docker_client.volumes.get(volume).remove(force=True)
            raise
        made.append((c, volume))
        return c

    yield start
    for c, volume in made:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
        try:
            docker_client.volumes.get(volume).remove(force=True)
        except docker.errors.NotFound:
            pass


def wait_for(what: str, check: Callable[[], bool], timeout: float, logs: Callable[[], str]) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(0.25)
    raise AssertionError(f"{what} not within {timeout:.0f}s; agent log:\n{logs()}")


def test_containerized_agent_syncs_a_stack_read_only_and_turns_healthy(
    docker_client: docker.DockerClient, agent_image: str, app_image: str, git_repo: Path, tmp_path: Path,
    stack_name: str, cleanup_stacks: list[str], run_agent: Callable[..., docker.models.containers.Container],
) -> None:
    cleanup_stacks.append(stack_name)
    rev = commit_files(git_repo, {
        f"devices/d1/{stack_name}/compose.yaml":
            f"services:\n  app:\n    image: {app_image}\n    command: {IDLE}\n    restart: unless-stopped\n",
    }, "a stack for the containerized agent")
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "config.yaml").write_text(
        "device: {id: container-device}\n"
        "source: {url: 'file:///fleet', ref: main, path: devices/d1, interval: 2s, jitter: 0s}\n"
        "state_dir: /var/lib/gitops-edge\n"
        "health: {timeout: 30s, stable_for: 1s}\n"
        "status: {listen: '127.0.0.1:9469'}\n"
    )
    name = "gitops-edge-" + stack_name
    agent = run_agent(
        agent_image, name + "-state",
        name=name,
        read_only=True,
        tmpfs={"/tmp": "size=64m,mode=1777"},
        init=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            name + "-state": {"bind": "/var/lib/gitops-edge", "mode": "rw"},
            str(conf): {"bind": "/etc/gitops-edge", "mode": "ro"},
            str(git_repo): {"bind": "/fleet", "mode": "ro"},
        },
        # The image's HEALTHCHECK command, polled every second instead of every 30 s.
        healthcheck={"interval": 1_000_000_000, "timeout": 4_000_000_000, "retries": 3, "start_period": 0},
        labels={"gitops-edge-test": "container-image"},
    )

    def logs() -> str:
        try:
            return agent.logs().decode(errors="replace")[-4000:]
        except docker.errors.APIError as exc:
            return f"(no logs: {exc})"

    def stack_running() -> bool:
        agent.reload()
        assert agent.status in ("created", "running"), f"agent container {agent.status}:\n{logs()}"
        cs = docker_client.containers.list(
            filters={"label": f"com.docker.compose.project={stack_name}"}, ignore_removed=True
        )
        return len(cs) == 1 and cs[0].status == "running" and cs[0].labels.get("io.gitops-edge.revision") == rev

    synced = wait_for("the stack deployed by the containerized agent", stack_running, 60, logs)
    (app,) = docker_client.containers.list(filters={"label": f"com.docker.compose.project={stack_name}"})
    assert app.name == f"{stack_name}-app-1"
    assert app.image.tags == [app_image]
    assert app.labels["com.docker.compose.service"] == "app"

    def healthy() -> bool:
        agent.reload()
        return agent.attrs["State"].get("Health", {}).get("Status") == "healthy"

    wait_for("the image's HEALTHCHECK to pass", healthy, 30, logs)
    inspect = docker_client.api.inspect_container(agent.id)
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    image_cfg = docker_client.images.get(agent_image).attrs["Config"]
    assert image_cfg["Entrypoint"] == ["gitops-edge"] and image_cfg["Cmd"] == ["run"]
    assert "/healthz" in json.dumps(image_cfg["Healthcheck"]["Test"]) + json.dumps(image_cfg["Env"])
    assert "/var/lib/gitops-edge" in (image_cfg.get("Volumes") or {})

    # The CLI in the running container reads the same state (read-only root, state in the volume);
    # the stack is listed once the agent's sync has passed the health gate and committed.
    def status_lists_stack() -> bool:
        code, out = agent.exec_run(["gitops-edge", "status", "--json"], demux=False)
        assert code == 0, out.decode(errors="replace")
        return any(st["stack"] == stack_name for st in json.loads(out)["stacks"])

    wait_for("the committed stack in the agent's status", status_lists_stack, 60, logs)
    # Nothing is writable outside the volume and /tmp.
    code, out = agent.exec_run(["sh", "-c", "touch /opt/gitops-edge/x || touch /etc/x"])
    assert code != 0 and b"Read-only file system" in out
    print(f"stack deployed {synced:.1f} s after the agent container started")
