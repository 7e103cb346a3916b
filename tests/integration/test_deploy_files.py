"""deploy/: install.sh's dry run and the agent's own compose file, checked by the real Compose."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.integration.agent_harness import ROOT


def test_install_dry_run_shows_every_step_and_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "root"
    out = subprocess.run([str(ROOT / "deploy/install.sh"), "--dry-run", "--root", str(target)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for step in ("-m venv", "pip install --upgrade", "bin/gitops-edge", "gitops-edge.service",
                 "etc/gitops-edge/config.yaml", "var/lib/gitops-edge"):
        assert step in out.stdout, f"{step!r} missing from the dry run:\n{out.stdout}"
    assert "nothing was changed" in out.stdout
    assert not target.exists()


def test_install_refuses_unknown_arguments() -> None:
    out = subprocess.run([str(ROOT / "deploy/install.sh"), "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "unknown argument" in out.stderr


def test_agent_compose_file_is_hardened(compose_bin: str) -> None:
    out = subprocess.run([compose_bin, "-f", str(ROOT / "deploy/compose.yaml"), "config", "--format", "json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    agent = json.loads(out.stdout)["services"]["agent"]
    assert agent["read_only"] is True
    assert any(t.startswith("/tmp") for t in agent["tmpfs"])
    mounts = {v["target"]: v for v in agent["volumes"]}
    assert mounts["/var/run/docker.sock"]["source"] == "/var/run/docker.sock"
    assert mounts["/var/lib/gitops-edge"]["type"] == "volume"
    assert mounts["/etc/gitops-edge"]["read_only"] is True
    assert agent["cap_drop"] == ["ALL"]
    assert "/healthz" in json.dumps(agent["healthcheck"]["test"]) + json.dumps(agent["environment"])
    # The same probe as the image's HEALTHCHECK.
    dockerfile = (ROOT / "Dockerfile").read_text()
    probe = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])\n", dockerfile, re.S)
    assert probe is not None
    assert json.loads(probe.group(1)) == agent["healthcheck"]["test"][1:]
