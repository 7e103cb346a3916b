"""Issue 11 on the real engine: one scripted scenario a fleet operator lives through.

Two stacks on a device running the daemon (status endpoint and MQTT): deploy,
a bad commit that rolls one back, the fix, the removal of a stack. At every
stage the `status` table, `/status`, `/metrics` and `fleet status` (a real
Mosquitto) must agree on every stack's readiness, and a removed stack leaves
no row or series anywhere.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gitops_edge.demo import tinyimage
from gitops_edge.model.evidence import FAILED_SUFFIX
from tests.integration.agent_harness import ROOT, Device
from tests.support.mosquitto import Mosquitto
from tests.support.net import free_port

pytestmark = pytest.mark.docker

SERVE = json.dumps(tinyimage.SERVE)
CRASH = '["sh", "-c", "echo starting; echo config error: no such file >&2; exit 3"]'


def stack(image: str, command: str = SERVE) -> str:
    return f"""\
services:
  web:
    image: {image}
    command: {command}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      retries: 3
"""


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read().decode())


def eventually(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll until ``check`` returns something true (the MQTT status is published from a thread)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what}: still {last!r}")


class Views:
    """Every stack's readiness, as each surface reports it."""

    def __init__(self, dev: Device, status_url: str, broker: str, prefix: str) -> None:
        self.dev, self.url, self.broker, self.prefix = dev, status_url, broker, prefix

    def table(self) -> dict[str, str]:
        out = self.dev.cli("status")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["STACK", "READY"])
        rows: dict[str, str] = {}
        for line in lines[start + 1:]:
            if not line.strip():
                break
            name, ready, *_ = line.split()
            rows[name] = ready
        return rows

    def endpoint(self) -> dict[str, Any]:
        return {s["stack"]: s for s in json.loads(get(f"{self.url}/status"))["stacks"]}

    def metrics(self) -> dict[str, str]:
        text = get(f"{self.url}/metrics")
        return {m.group(1): "True" if m.group(2) == "1.0" else "False"
                for m in re.finditer(r'^gitops_edge_stack_ready\{stack="([^"]+)"\} (\S+)$', text, re.MULTILINE)}

    def fleet(self) -> tuple[dict[str, str], str]:
        out = subprocess.run(
            [sys.executable, "-m", "gitops_edge", "fleet", "status", "--broker", self.broker,
             "--prefix", self.prefix, "--wait", "0.5s"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        js = subprocess.run(
            [sys.executable, "-m", "gitops_edge", "fleet", "status", "--broker", self.broker,
             "--prefix", self.prefix, "--wait", "0.5s", "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        [entry] = [e for e in json.loads(js.stdout) if e["device"] == self.dev.device_id]
        stacks = (entry.get("status") or {}).get("stacks", {})
        [row] = [line for line in out.stdout.splitlines() if line.startswith(self.dev.device_id + " ")]
        return {name: s.get("ready") for name, s in stacks.items()}, row

    def agree(self, want: dict[str, str]) -> dict[str, Any]:
        """All four surfaces say ``want`` (stack -> True/False); returns /status by stack."""
        assert self.table() == want, self.dev.cli("status").stdout
        endpoint = self.endpoint()
        assert {k: v["ready"] for k, v in endpoint.items()} == want
        metrics = {k: ("True" if v == "True" else "False") for k, v in want.items()}
        assert self.metrics() == metrics
        fleet_row = eventually(f"fleet status to show {want}",
                               lambda: (lambda f: f[1] if f[0] == want else None)(self.fleet()))
        healthy = "all healthy" in fleet_row
        assert healthy == all(v == "True" for v in want.values()), fleet_row
        return endpoint


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def agent(device: Device, mosquitto: Mosquitto, prefix: str) -> Iterator[Views]:
    """The daemon: polls once an hour, so every sync here is asked for by hand (and runs inside it)."""
    port = free_port()
    device.device_id = "truthful-" + prefix
    device.interval, device.jitter = "1h", "0s"
    device.source_extra = ", spread_start: false"
    device.health = "{timeout: 30s, stable_for: 1s}"
    device.status_listen = f"127.0.0.1:{port}"
    device.extra_config = f"mqtt: {{broker: '{mosquitto.url}', topic_prefix: {prefix}, keepalive: 5}}\n"
    log = (device.workdir / "daemon.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "gitops_edge", "--config", str(device.config), "run"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    sock = device.workdir / "state" / "control.sock"
    try:
        eventually("the daemon's control socket", sock.exists)
        yield Views(device, f"http://127.0.0.1:{port}", mosquitto.url, prefix)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_deploy_bad_commit_fix_and_removal_agree_everywhere(
    agent: Views, device: Device, stack_name: str, test_images: dict[str, str]
) -> None:
    a, b = stack_name + "a", stack_name + "b"
    device.cleanup += [a, b]  # type: ignore[attr-defined]
    v1, v2 = test_images["v1"], test_images["v2"]

    # 1. deploy: both ready everywhere
    device.commit({"README.md": "truthful\n", f"{a}/compose.yaml": stack(v1), f"{b}/compose.yaml": stack(v1)})
    out = device.cli("sync")
    assert out.returncode == 0, out.stdout + out.stderr
    agent.agree({a: "True", b: "True"})

    # 2. a bad commit for a (b moves on in the same commit): a rolls back, b applies; exit 1
    bad = device.commit({f"{a}/compose.yaml": stack(v2, CRASH), f"{b}/compose.yaml": stack(v2)}, "bad")
    out = device.cli("sync")
    assert out.returncode == 1, out.stdout + out.stderr
    status = agent.agree({a: "False", b: "True"})
    assert (status[a]["reason"], status[a]["step"]) == ("RolledBack", "gate"), status[a]
    assert bad[:12] in status[a]["message"] and "exited with code 3" in status[a]["message"]
    evidence = status[a]["evidence"]
    assert evidence["service"] == "web" and evidence["exit_code"] == 3, evidence
    assert "config error: no such file" in evidence["logs"], evidence
    kept = device.containers(a)[f"{a}-web-1{FAILED_SUFFIX}"]
    assert kept.status == "exited" and b"config error" in kept.logs()  # `docker logs` still works
    table = device.cli("status").stdout
    assert "config error: no such file" in table and f"docker logs {a}-web-1{FAILED_SUFFIX}" in table
    history = json.loads(device.cli("history", "--json").stdout)
    assert history[0]["outcome"] == "rolled_back" and history[0]["evidence"][0]["exit_code"] == 3
    assert any(x.startswith(f"recreate {b}/web") for x in history[0]["actions"]), history[0]
    assert any(x.endswith("(rolled back)") for x in history[0]["actions"]), history[0]
    metrics = get(f"{agent.url}/metrics")
    assert "gitops_edge_quarantined_stacks 1.0" in metrics
    assert f'gitops_edge_stack_rollbacks_total{{stack="{a}"}} 1.0' in metrics
    assert f'gitops_edge_stack_condition{{ready="False",reason="RolledBack",stack="{a}"}} 1.0' in metrics

    # the same commit again: a stays not ready (held), nothing changes
    assert device.cli("sync").returncode == 0
    agent.agree({a: "False", b: "True"})

    # 3. the fix: a newer good commit ends the quarantine by itself
    device.commit({f"{a}/compose.yaml": stack(v2)}, "fix")
    out = device.cli("sync")
    assert out.returncode == 0, out.stdout + out.stderr
    status = agent.agree({a: "True", b: "True"})
    assert status[a]["quarantined"] is None and status[a]["evidence"] is None
    assert "gitops_edge_quarantined_stacks 0.0" in get(f"{agent.url}/metrics")
    assert not [n for n in device.containers(a) if n.endswith(FAILED_SUFFIX)]

    # 4. removal: a leaves no row or series anywhere
    device.commit({f"{a}/compose.yaml": None}, "remove a")
    out = device.cli("sync")
    assert out.returncode == 0, out.stdout + out.stderr
    agent.agree({b: "True"})
    assert f'stack="{a}"' not in get(f"{agent.url}/metrics")
    assert device.containers(a) == {}
