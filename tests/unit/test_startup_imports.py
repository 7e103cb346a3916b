"""What a one-shot ``status`` or ``history`` process imports (issue 16, start-up), without an engine.

``tests/integration/test_startup.py`` shows the same on a real device, with a no-change ``sync``
answered from the idle memo; this one runs anywhere: the engine socket does not exist, so
``status`` reports the engine's error, from the store and the agent config alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.imports import CAPTURE, heavy

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["history"]], ids=" ".join)
def test_status_and_history_import_nothing_heavy(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"device: {{id: d1}}\nsource: {{url: {tmp_path / 'repo'}}}\nstate_dir: {tmp_path / 'state'}\n")
    (tmp_path / "state").mkdir()
    first = _run(tmp_path, config, command)
    assert "yaml" in first  # the config was parsed, and its parse kept (adapters/files/config_cache.py)
    second = _run(tmp_path, config, command)
    assert "gitops_edge.adapters.store.sqlite" in second  # it did read the store
    assert heavy(second) == []  # the same config: no PyYAML either


def _run(tmp_path: Path, config: Path, command: list[str]) -> set[str]:
    """One command line process; the modules it imported."""
    listing = tmp_path / "modules.json"
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path / 'no-engine.sock'}")
    out = subprocess.run([sys.executable, "-c", CAPTURE, str(listing), "--config", str(config), *command],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    if command[0] == "status":
        assert ("engine" in out.stdout and "no stacks" in out.stdout) or '"engine_error"' in out.stdout
    return set(json.loads(listing.read_text()))
