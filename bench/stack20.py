"""The 20-service stack shared by ``bench.sync_noop``, ``bench.update_one`` and ``bench.memory``.

One service (``web``) serves HTTP with a 1 s healthcheck; the other 19 idle.
Every command exits on SIGTERM, so stops take milliseconds. Images are the
tiny local busybox images of ``bench.rollback`` (``pull_policy: missing``,
no registry). ``Side`` deploys the same file twice: once through a real
gitops-edge device (a Git repo, a config, a state dir) and once as a plain
Compose project, the peer.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker

from bench.rollback import IDLE, IMAGE, ROOT, SERVE, check, git_commit, git_init, remove_project, run

N_SERVICES = 20


def cmd(c: list[str]) -> str:
    return "[" + ", ".join(f'"{a}"' for a in c) + "]"


def stack_yaml(web_tag: str = "v1", n: int = N_SERVICES) -> str:
    """``web`` (healthcheck, image ``web_tag``) and ``n - 1`` idle services on v1."""
    out = [
        "services:",
        "  web:",
        f"    image: {IMAGE}:{web_tag}",
        f"    command: {cmd(SERVE)}",
        "    restart: unless-stopped",
        "    healthcheck:",
        '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]',
        "      interval: 1s",
        "      timeout: 2s",
        "      retries: 2",
    ]
    for i in range(1, n):
        out += [
            f"  svc{i:02d}:",
            f"    image: {IMAGE}:v1",
            f"    command: {cmd(IDLE)}",
            "    restart: unless-stopped",
        ]
    return "\n".join(out) + "\n"


@dataclass
class AgentDevice:
    """A gitops-edge device following a local Git repo with one stack, ``project``."""

    work: Path
    project: str
    extra_config: str = ""
    interval: str = "5s"
    spread_start: bool = True

    @property
    def repo(self) -> Path:
        return self.work / "fleet"

    @property
    def config(self) -> Path:
        return self.work / "agent.yaml"

    @property
    def state_dir(self) -> Path:
        return self.work / "state"

    def init(self, compose_yaml: str) -> None:
        git_init(self.repo)
        self.write_config()
        self.commit(compose_yaml, "initial")

    def write_config(self) -> None:
        self.config.write_text(
            "device: {id: bench}\n"
            f"source: {{url: '{self.repo}', ref: main, path: devices/d1, interval: {self.interval}, "
            f"spread_start: {str(self.spread_start).lower()}}}\n"
            f"state_dir: {self.state_dir}\n"
            "health: {timeout: 60s, stable_for: 1s}\n"
            "status: {listen: ''}\n"
            f"{self.extra_config}"
        )

    def commit(self, compose_yaml: str, message: str) -> None:
        git_commit(self.repo, {f"devices/d1/{self.project}/compose.yaml": compose_yaml}, message)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "gitops_edge", "--config", str(self.config), *args]

    def sync(self, code: int = 0) -> float:
        """One ``gitops-edge sync`` process; its wall time in seconds."""
        t0 = time.monotonic()
        out = run(self.argv("sync"), ROOT)
        took = time.monotonic() - t0
        check(out, "gitops-edge sync", code)
        return took


@dataclass
class ComposeProject:
    """The peer: the same compose file as a plain Compose project."""

    work: Path
    project: str
    dc: str

    def write(self, compose_yaml: str) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "compose.yaml").write_text(compose_yaml)

    def up(self, *extra: str) -> float:
        t0 = time.monotonic()
        out = run([self.dc, "-p", self.project, "-f", "compose.yaml", "up", "-d", *extra], self.work)
        took = time.monotonic() - t0
        check(out, f"docker-compose up {' '.join(extra)}")
        if "Recreate" in out.stderr and "--wait" not in extra:
            print(f"note: compose recreated something:\n{out.stderr}", file=sys.stderr)
        return took


def project_name(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:8]


def running_ids(client: docker.DockerClient, project: str) -> set[str]:
    flt = {"label": f"com.docker.compose.project={project}", "status": "running"}
    return {c.id for c in client.containers.list(filters=flt)}


def cleanup(client: docker.DockerClient, *projects: str) -> None:
    for p in projects:
        remove_project(client, p)
