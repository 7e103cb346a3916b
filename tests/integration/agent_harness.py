"""Drive the real `gitops-edge` process against a real Git repo and engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from tests.conftest import commit_files

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Device:
    """One simulated device: its config, state dir and the fleet repo it follows."""

    repo: Path
    workdir: Path
    client: docker.DockerClient
    path: str = "devices/d1"
    extra_env: dict[str, str] = field(default_factory=dict)
    health: str = "{timeout: 30s, stable_for: 1s}"
    status_listen: str = "127.0.0.1:0"  # an ephemeral port: several daemons may run at once
    extra_config: str = ""
    interval: str = "5s"
    jitter: str = "10s"
    source_extra: str = ""  # more keys inside `source:`, e.g. ", verify: {...}"
    device_id: str = "test-device"
    labels: str = "{}"  # YAML flow mapping
    ref: str = "main"  # may use ${label:NAME} / ${DEVICE_ID}
    device_extra: str = ""  # more keys inside `device:`, e.g. ", platform: linux/arm64"

    @property
    def config(self) -> Path:
        cfg = self.workdir / "agent.yaml"
        cfg.write_text(
            f"device: {{id: {self.device_id}, labels: {self.labels}{self.device_extra}}}\n"
            f"source: {{url: '{self.repo}', ref: '{self.ref}', path: {self.path}, "
            f"interval: {self.interval}, jitter: {self.jitter}{self.source_extra}}}\n"
            f"state_dir: {self.workdir / 'state'}\n"
            f"health: {self.health}\n"
            f"status: {{listen: '{self.status_listen}'}}\n"
            f"{self.extra_config}"
        )
        return cfg

    def cli(
        self, *args: str, timeout: float = 180, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, **self.extra_env, **(env or {}))
        return subprocess.run(
            [sys.executable, "-m", "gitops_edge", "--config", str(self.config), *args],
            cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout,
        )

    def commit(self, files: dict[str, str | None], message: str = "update") -> str:
        return commit_files(self.repo, {f"{self.path}/{k}": v for k, v in files.items()}, message)

    def containers(self, stack: str) -> dict[str, Any]:
        """name -> container, every state, for one compose project."""
        # the agent may remove a container (a kept one at commit) between the list and its inspect
        cs = self.client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={stack}"}, ignore_removed=True
        )
        return {c.name: c for c in cs}

    def status(self) -> dict[str, Any]:
        out = self.cli("status", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)  # type: ignore[no-any-return]


def assert_clean_failure(out: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert out.returncode == code, f"exit {out.returncode}, wanted {code}\nstdout:{out.stdout}\nstderr:{out.stderr}"
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    for n in needles:
        assert n in out.stderr, f"{n!r} not in stderr: {out.stderr}"
