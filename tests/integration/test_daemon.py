"""The daemon as a real process: deploys on its own, follows new commits, stops fast.

``python -m gitops_edge run`` against a real Git repo and the real engine; the
only control the test has is Git commits and signals, like an operator's.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.demo import tinyimage
from tests.integration.agent_harness import ROOT, Device, assert_clean_failure

KEPT = "-gitops-edge-kept"
# httpd as PID 1 ignores SIGTERM and every stop would take the 10 s grace
SERVE = json.dumps(tinyimage.SERVE)  # a YAML flow sequence for `command:`
PROBE_OK = '["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]'


def stack(image: str, *, probe: str = PROBE_OK, start_period: str = "0s", mode: str = "a") -> str:
    return f"""\
services:
  web:
    image: {image}
    command: {SERVE}
    restart: unless-stopped
    environment:
      MODE: {mode}
    healthcheck:
      test: {probe}
      interval: 1s
      timeout: 2s
      retries: 3
      start_period: {start_period}
  worker:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    restart: unless-stopped
    depends_on: [web]
"""


@dataclass
class FastDevice(Device):
    """A device polling every 2 s without jitter."""

    interval: str = "2s"
    jitter: str = "0s"


@pytest.fixture
def fast(device: Device) -> FastDevice:
    dev = FastDevice(repo=device.repo, workdir=device.workdir, client=device.client,
                     health="{timeout: 30s, stable_for: 1s}")
    dev.cleanup = device.cleanup  # type: ignore[attr-defined]
    return dev


class Daemon:
    def __init__(self, dev: Device) -> None:
        self.log = dev.workdir / "daemon.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gitops_edge", "--config", str(dev.config), "run"],
            cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT, text=True,
        )

    def output(self) -> str:
        return self.log.read_text()

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds until the process was gone)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon ignored SIGTERM for 30 s:\n{self.output()}") from None
        return rc, time.monotonic() - t0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


@pytest.fixture
def daemon(fast: FastDevice) -> Iterator[Callable[[], Daemon]]:
    started: list[Daemon] = []

    def start() -> Daemon:
        d = Daemon(fast)
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


def wait_for(what: str, check: Callable[[], bool], timeout: float, d: Daemon | None = None) -> float:
    """Poll ``check`` until true; returns the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        if d is not None and d.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({d.proc.returncode}) while waiting for {what}:\n{d.output()}")
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout:.0f}s" + (f":\n{d.output()}" if d else ""))


def serving(dev: Device, s: str, revision: str) -> bool:
    """Exactly web and worker, running, of ``revision``, web healthy, nothing kept."""
    cs = dev.containers(s)
    if set(cs) != {f"{s}-web-1", f"{s}-worker-1"}:
        return False
    for c in cs.values():
        if c.status != "running" or c.labels.get("io.gitops-edge.revision") != revision:
            return False
    web = cs[f"{s}-web-1"].attrs
    return bool(web["State"].get("Health", {}).get("Status") == "healthy")


def one_per_service(dev: Device, s: str) -> dict[str, Any]:
    cs = dev.containers(s)
    assert not [n for n in cs if n.endswith(KEPT)], f"kept leftovers: {sorted(cs)}"
    services = sorted(c.labels["com.docker.compose.service"] for c in cs.values())
    assert services == ["web", "worker"], sorted(cs)
    return cs


def test_daemon_deploys_follows_commits_and_stops_on_sigterm(
        fast: FastDevice, daemon: Callable[[], Daemon], stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    fast.cleanup.append(s)  # type: ignore[attr-defined]
    rev1 = fast.commit({"README.md": "d1\n", f"{s}/compose.yaml": stack(test_images["v1"])}, "deploy")

    d = daemon()
    took = wait_for("first deploy", lambda: serving(fast, s, rev1), 30, d)
    assert took < 20, f"the first sync runs at start (took {took:.1f}s)"
    first = {n: c.id for n, c in one_per_service(fast, s).items()}

    # a new commit is picked up by the schedule alone (interval 2 s)
    rev2 = fast.commit({f"{s}/compose.yaml": stack(test_images["v2"])}, "v2")
    took = wait_for("the v2 commit", lambda: serving(fast, s, rev2), 30, d)
    assert took < 20, f"a new commit lands within a poll interval plus a sync (took {took:.1f}s)"
    cs = one_per_service(fast, s)
    assert all(cs[n].id != first[n] for n in first)
    assert cs[f"{s}-web-1"].labels["io.gitops-edge.image"].startswith(test_images["v2"].rsplit(":", 1)[0])

    # idle ticks change nothing
    time.sleep(2.5)
    assert {n: c.id for n, c in fast.containers(s).items()} == {n: c.id for n, c in cs.items()}

    rc, took = d.terminate()
    assert rc == 0, d.output()
    assert took < 10, f"SIGTERM to exit took {took:.1f}s"
    assert "Traceback" not in d.output(), d.output()

    hist = fast.cli("history", "--json")
    assert hist.returncode == 0, hist.stderr
    records = json.loads(hist.stdout)
    applied = [h["revision"] for h in records if h["outcome"] == "applied"]
    assert rev1 in applied and rev2 in applied


def test_sigterm_during_health_gate_exits_fast_and_next_sync_recovers(
        fast: FastDevice, daemon: Callable[[], Daemon], stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    fast.cleanup.append(s)  # type: ignore[attr-defined]
    fast.health = "{timeout: 60s, stable_for: 1s}"
    rev1 = fast.commit({"README.md": "d1\n", f"{s}/compose.yaml": stack(test_images["v1"])}, "deploy")
    out = fast.cli("sync")
    assert out.returncode == 0, out.stderr
    assert serving(fast, s, rev1)

    # v2's probe fails inside a long start period: health stays "starting", the gate waits
    rev2 = fast.commit({f"{s}/compose.yaml": stack(test_images["v2"], probe='["CMD", "false"]',
                                                   start_period="5m")}, "v2 never healthy")
    d = daemon()

    def in_gate() -> bool:
        cs = fast.containers(s)
        kept = [n for n in cs if n.endswith(KEPT)]
        new = [c for n, c in cs.items() if not n.endswith(KEPT)
               and c.labels.get("io.gitops-edge.revision") == rev2 and c.status == "running"]
        return bool(kept) and bool(new)

    wait_for("v2 in its health gate", in_gate, 30, d)
    time.sleep(1)
    rc, took = d.terminate()
    assert rc == 0, d.output()
    assert took < 10, f"SIGTERM during the health gate to exit took {took:.1f}s"
    assert "Traceback" not in d.output(), d.output()

    # the operator fixes the release; the next sync first undoes the interrupted switch
    rev3 = fast.commit({f"{s}/compose.yaml": stack(test_images["v3"])}, "v3")
    fast.health = "{timeout: 30s, stable_for: 1s}"
    out = fast.cli("sync")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "undoing the interrupted switch" in out.stderr, out.stderr
    assert serving(fast, s, rev3)
    one_per_service(fast, s)

    # and once more: nothing left to do
    out = fast.cli("sync")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("unchanged"), out.stdout


def test_validate_cli(tmp_path: Path) -> None:
    good = tmp_path / "good"
    (good / "web").mkdir(parents=True)
    (good / "web" / "compose.yaml").write_text("services:\n  web:\n    image: busybox:1\n")
    out = subprocess.run([sys.executable, "-m", "gitops_edge", "validate", str(good)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout

    bad = tmp_path / "bad"
    (bad / "web").mkdir(parents=True)
    (bad / "web" / "compose.yaml").write_text(
        "services:\n  web:\n    image: busybox:1\n    helthcheck:\n      test: [CMD, 'true']\n")
    (bad / "ok").mkdir()
    (bad / "ok" / "compose.yaml").write_text("services:\n  a:\n    image: busybox:1\n")
    out = subprocess.run([sys.executable, "-m", "gitops_edge", "validate", str(bad)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert_clean_failure(out, 2, "web/compose.yaml:4", "helthcheck")

    out = subprocess.run([sys.executable, "-m", "gitops_edge", "validate", str(tmp_path / "nope")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert_clean_failure(out, 2, "not a directory")
