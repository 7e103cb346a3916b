"""One writer per device: with a daemon running, the CLI asks it over the control socket.

A real daemon (``python -m gitops_edge run``), a real Git repo and the real engine:
``sync`` returns the daemon's own result and streams its progress, the other commands
answer from the daemon, and ``--no-daemon`` still works standalone.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_edge.demo import tinyimage
from tests.integration.agent_harness import ROOT, Device

pytestmark = pytest.mark.docker

SERVE = json.dumps(tinyimage.SERVE)


def stack(image: str, mode: str) -> str:
    return f"""\
services:
  web:
    image: {image}
    command: {SERVE}
    environment:
      MODE: {mode}
"""


@pytest.fixture
def slow_device(device: Device) -> Device:
    """Polls once an hour: any second sync in a test was asked for by hand."""
    device.interval = "1h"
    device.jitter = "0s"
    device.source_extra = ", spread_start: false"
    device.health = "{timeout: 30s, stable_for: 1s}"
    return device


@pytest.fixture
def running(slow_device: Device, test_images: dict[str, str]) -> Iterator[tuple[Device, subprocess.Popen[str]]]:
    dev = slow_device
    dev.commit({"ctl/compose.yaml": stack(test_images["v1"], "a")})
    dev.cleanup.append("ctl")  # type: ignore[attr-defined]
    log = (dev.workdir / "daemon.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "gitops_edge", "--config", str(dev.config), "run"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    sock = dev.workdir / "state" / "control.sock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ("applied" in (dev.workdir / "daemon.log").read_text()
                                               and sock.exists()):
        time.sleep(0.2)
    assert sock.exists(), (dev.workdir / "daemon.log").read_text()
    try:
        yield dev, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_sync_is_carried_out_by_the_daemon_and_streams_its_progress(
    running: tuple[Device, subprocess.Popen[str]], test_images: dict[str, str]
) -> None:
    dev, _ = running
    sock = dev.workdir / "state" / "control.sock"
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    before = (dev.workdir / "daemon.log").read_text().count("sync applied")
    rev = dev.commit({"ctl/compose.yaml": stack(test_images["v1"], "b")})
    out = dev.cli("sync")
    assert out.returncode == 0, out.stderr
    assert f"applied: {rev[:12]}" in out.stdout
    assert "INFO stage" in out.stderr and "INFO commit ctl" in out.stderr  # the daemon's progress lines, streamed
    assert "sync applied" not in out.stderr  # its summary is the outcome line on stdout, not said twice
    # the daemon itself ran it (its log has one more applied sync); no second writer
    log = (dev.workdir / "daemon.log").read_text()
    assert log.count("sync applied") == before + 1, log
    env = dev.containers("ctl")["ctl-web-1"].attrs["Config"]["Env"]
    assert "MODE=b" in env


def test_other_commands_answer_from_the_daemon(running: tuple[Device, subprocess.Popen[str]]) -> None:
    dev, _ = running
    st = dev.cli("status", "--json", "--log-level", "warning")  # global flags after the command
    assert st.returncode == 0, st.stderr
    assert [s["stack"] for s in json.loads(st.stdout)["stacks"]] == ["ctl"]
    bad = dev.cli("suspend", "nosuch")
    assert bad.returncode == 2
    assert "no stack named 'nosuch'" in bad.stderr and "known: ctl" in bad.stderr
    locked = dev.cli("lock", "--reason", "maintenance")
    assert locked.returncode == 0, locked.stderr
    assert json.loads(dev.cli("status", "--json").stdout)["lock"]["reason"] == "maintenance"
    assert dev.cli("unlock").returncode == 0


def test_no_daemon_flag_and_no_daemon_work_standalone(slow_device: Device, test_images: dict[str, str]) -> None:
    dev = slow_device
    rev = dev.commit({"ctl/compose.yaml": stack(test_images["v1"], "a")})
    dev.cleanup.append("ctl")  # type: ignore[attr-defined]
    out = dev.cli("sync")  # nobody listens on the socket: standalone, as before
    assert out.returncode == 0, out.stderr
    assert f"applied: {rev[:12]}" in out.stdout
    again = dev.cli("--no-daemon", "sync")
    assert again.returncode == 0 and "unchanged" in again.stdout


def test_validate_refuses_a_tree_without_stacks(tmp_path: Path) -> None:
    (tmp_path / "devices" / "d1" / "web").mkdir(parents=True)
    (tmp_path / "devices" / "d1" / "web" / "compose.yaml").write_text("services: {web: {image: busybox}}\n")
    for wrong in (tmp_path, tmp_path / "devices"):  # one level off, two levels off
        out = subprocess.run([sys.executable, "-m", "gitops_edge", "validate", str(wrong)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stdout
        assert "no stack found" in out.stderr and "Traceback" not in out.stderr
    ok = subprocess.run([sys.executable, "-m", "gitops_edge", "validate", str(tmp_path / "devices" / "d1")],
                        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr


def test_a_closed_pipe_is_not_an_error(slow_device: Device, test_images: dict[str, str]) -> None:
    dev = slow_device
    dev.commit({"ctl/compose.yaml": stack(test_images["v1"], "a")})
    dev.cleanup.append("ctl")  # type: ignore[attr-defined]
    assert dev.cli("sync").returncode == 0
    for _ in range(3):
        dev.cli("--no-daemon", "sync")
    cmd = (f"{sys.executable} -m gitops_edge --config {dev.config} history --json | head -c 10; "
           "exit ${PIPESTATUS[0]}")
    out = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "BrokenPipe" not in out.stderr and "Traceback" not in out.stderr
