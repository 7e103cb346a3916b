"""A standalone process that finds nothing to do is light (issue 16, start-up): real device.

After a full no-change sync, the next ``gitops-edge sync`` process answers from the idle memo
kept in the store (one ls-remote, one container list): it builds no reconciler and imports no
Compose loader, planner, spec model, docker SDK, TLS, HTTP server, scheduler, MQTT, metrics or
signature stack; ``status`` reads the store and lists the engine's containers, with the same
restraint. The memo stays truthful: a container removed by hand, a changed agent config, a
secret gone from the secrets directory and a moved commit each make the next process run the
whole sync (its plan lines show it), and nothing is written by a quick answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.agent_harness import ROOT, Device
from tests.integration.test_daemon import stack
from tests.support.imports import CAPTURE, heavy


def run(device: Device, tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """One ``gitops-edge`` process and the modules it had imported when it was done."""
    listing = tmp / "modules.json"
    listing.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-c", CAPTURE, str(listing), "--config", str(device.config), *args],
                         cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=180)
    return out, set(json.loads(listing.read_text())) if listing.exists() else set()


def with_secret(image: str) -> str:
    return stack(image) + "    secrets: [token]\nsecrets:\n  token: {file: ./token.txt}\n"


def sync(device: Device, tmp: Path) -> tuple[str, bool]:
    """(stdout, answered from the memo) of one ``sync`` process that must succeed."""
    out, modules = run(device, tmp, "sync")
    assert out.returncode == 0, out.stdout + out.stderr
    quick = "gitops_edge.engine.reconcile" not in modules
    assert quick == out.stdout.startswith("unchanged: "), out.stdout  # a full sync prints its plan first
    return out.stdout, quick


def test_a_no_change_process_is_light_and_its_memo_truthful(
        device: Device, stack_name: str, test_images: dict[str, str], tmp_path: Path) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("s3cret\n")
    device.device_extra = f", secrets_dir: {secrets}"
    rev = device.commit({f"{s}/compose.yaml": with_secret(test_images["v1"])}, "deploy")
    assert device.cli("sync").returncode == 0
    assert sync(device, tmp_path)[1] is False  # the first no-change sync is a full one: it keeps the memo
    store = device.workdir / "state"
    before = {p.name: p.stat().st_mtime_ns for p in store.iterdir() if p.is_file()}

    out, modules = run(device, tmp_path, "sync")
    assert out.returncode == 0 and out.stdout.strip() == f"unchanged: {rev[:12]}", out.stdout + out.stderr
    assert "gitops_edge.engine.idle" in modules and heavy(modules) == []
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir() if p.is_file()} == before  # nothing written

    out, modules = run(device, tmp_path, "status", "--json")
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    assert [(x["stack"], x["ready"], len(x["services"])) for x in st["stacks"]] == [(s, "True", 2)]
    assert heavy(modules) == []

    web = device.containers(s)[f"{s}-web-1"]
    web.remove(force=True)  # drift: a container removed by hand
    assert sync(device, tmp_path)[1] is False
    assert device.containers(s)[f"{s}-web-1"].status == "running"
    assert sync(device, tmp_path)[1] is False  # the repair changed the containers: one more full sync
    assert sync(device, tmp_path)[1] is True

    device.health = "{timeout: 31s, stable_for: 1s}"  # the agent config changed
    assert sync(device, tmp_path)[1] is False
    assert sync(device, tmp_path)[1] is True

    (secrets / "token").unlink()  # a secret the stack needs is gone from the device
    out, _ = run(device, tmp_path, "sync")
    assert out.returncode == 2 and "token" in out.stderr, out.stdout + out.stderr
    (secrets / "token").write_text("s3cret\n")
    assert sync(device, tmp_path)[1] is False
    assert sync(device, tmp_path)[1] is True

    rev2 = device.commit({f"{s}/compose.yaml": with_secret(test_images["v2"])}, "v2")  # the commit moved
    out, modules = run(device, tmp_path, "sync")
    assert out.returncode == 0 and f"applied: {rev2[:12]}" in out.stdout, out.stdout + out.stderr
    assert sync(device, tmp_path)[1] is False
    assert sync(device, tmp_path)[1] is True
    assert run(device, tmp_path, "sync", "--full")[1] >= {"gitops_edge.engine.reconcile"}  # --full: every step
