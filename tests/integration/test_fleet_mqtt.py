"""Fleet status over MQTT with a real Mosquitto, real daemons and the real `fleet status` command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gitops_edge.demo import tinyimage
from tests.conftest import commit_files
from tests.support.mosquitto import Mosquitto
from tests.support.net import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
GOOD = json.dumps(tinyimage.SERVE)  # a YAML flow sequence for `command:`


def stack(image: str) -> str:
    return f"""\
services:
  web:
    image: {image}
    command: {GOOD}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      retries: 3
"""


def config(work: Path, repo: Path, device: str, path: str, broker: str, prefix: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "agent.yaml"
    cfg.write_text(
        f"device: {{id: {device}, labels: {{site: lab}}}}\n"
        f"source: {{url: '{repo}', ref: main, path: {path}, interval: 2s, jitter: 0s, spread_start: false}}\n"
        f"state_dir: {work / 'state'}\n"
        "health: {timeout: 30s, stable_for: 1s}\n"
        "status: {listen: ''}\n"
        f"mqtt: {{broker: '{broker}', topic_prefix: {prefix}, keepalive: 5}}\n"
    )
    return cfg


def daemon(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gitops_edge", "--config", str(cfg), "run"], cwd=ROOT, stdout=out, stderr=out
        )


def fleet(broker: str, prefix: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "gitops_edge", "fleet", "status", "--broker", broker, "--prefix", prefix,
         "--json", "--wait", "0.5s"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def by_device(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["device"]: e for e in entries}



class Events:
    """A test-side subscriber to ``<prefix>/+/events`` (QoS 1)."""

    def __init__(self, port: int, prefix: str) -> None:
        self.got: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"events-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_a: c.subscribe(f"{prefix}/+/events", qos=1)
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.on_message = lambda _c, _u, m: self.got.append({"topic": m.topic, **json.loads(m.payload)})
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10), "subscriber did not subscribe"

    def of(self, device: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.got if e["device"] == device and e["event"] == kind]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_two_devices_report_and_a_killed_one_goes_offline(
    mosquitto: Mosquitto,
    git_repo: Path,
    docker_client: docker.DockerClient,
    cleanup_stacks: list[str],
    test_images: dict[str, str],
    stack_name: str,
    tmp_path: Path,
) -> None:
    prefix = "t" + uuid.uuid4().hex[:8]
    s1, s2 = stack_name, stack_name + "b"
    cleanup_stacks += [s1, s2]
    rev = commit_files(git_repo, {f"devices/a/{s1}/compose.yaml": stack(test_images["v1"]),
                                  f"devices/b/{s2}/compose.yaml": stack(test_images["v1"])})  # fmt: skip
    events = Events(mosquitto.port, prefix)
    cfg_a = config(tmp_path / "a", git_repo, "dev-a", "devices/a", mosquitto.url, prefix)
    cfg_b = config(tmp_path / "b", git_repo, "dev-b", "devices/b", mosquitto.url, prefix)
    proc = daemon(cfg_a, tmp_path / "a.log")
    try:
        # device b: a one-shot `sync` publishes its status and event too (no online flag: no daemon)
        out = subprocess.run([sys.executable, "-m", "gitops_edge", "--config", str(cfg_b), "sync"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr

        def both_healthy() -> dict[str, dict[str, Any]] | None:
            devs = by_device(fleet(mosquitto.url, prefix))
            def healthy(d: str, s: str) -> bool:
                st = devs.get(d, {}).get("status") or {}
                return bool(st.get("stacks", {}).get(s, {}).get("health") == {"web": "healthy"})

            ok = healthy("dev-a", s1) and healthy("dev-b", s2)
            return devs if ok else None

        devs = wait_for(both_healthy, 60, "both devices healthy\n" + (tmp_path / "a.log").read_text())
        a, b = devs["dev-a"], devs["dev-b"]
        assert a["online"] is True and b["online"] is None
        assert a["status"]["stacks"][s1]["revision"] == rev == b["status"]["stacks"][s2]["revision"]
        assert a["status"]["labels"] == {"site": "lab"}
        assert a["status"]["last_sync"]["outcome"] in ("applied", "unchanged")
        assert a["status"]["agent_version"] and a["status"]["quarantined"] == [] and a["status"]["lock"] is None

        wait_for(lambda: events.of("dev-a", "applied") and events.of("dev-b", "applied"), 20, "applied events")
        [ev] = events.of("dev-a", "applied")
        assert ev["topic"] == f"{prefix}/dev-a/events" and ev["revision"] == rev and ev["actions"]

        table = subprocess.run(
            [sys.executable, "-m", "gitops_edge", "fleet", "status", "--broker", mosquitto.url, "--prefix", prefix,
             "--wait", "0.5s"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["DEVICE", "ONLINE", "REVISION", "HEALTH", "LAST", "SYNC"]
        assert lines[1].startswith("dev-a") and f"{s1}@{rev[:7]}" in lines[1] and "all healthy" in lines[1]
        assert " ago applied" in lines[1] or " ago unchanged" in lines[1]

        proc.send_signal(signal.SIGKILL)  # no clean disconnect: the broker publishes the Last Will
        proc.wait(timeout=10)
        wait_for(lambda: by_device(fleet(mosquitto.url, prefix))["dev-a"]["online"] is False, 20, "dev-a offline")
    finally:
        if proc.poll() is None:
            proc.kill()
        events.close()


def test_event_of_a_sync_while_the_broker_is_down_arrives_when_it_is_back(
    git_repo: Path,
    docker_client: docker.DockerClient,
    cleanup_stacks: list[str],
    test_images: dict[str, str],
    stack_name: str,
    tmp_path: Path,
) -> None:
    broker = Mosquitto(tmp_path / "broker", free_port())  # not started yet
    prefix = "t" + uuid.uuid4().hex[:8]
    cleanup_stacks.append(stack_name)
    rev = commit_files(git_repo, {f"devices/c/{stack_name}/compose.yaml": stack(test_images["v1"])})
    cfg = config(tmp_path / "c", git_repo, "dev-c", "devices/c", broker.url, prefix)
    log = tmp_path / "c.log"
    proc = daemon(cfg, log)
    events: Events | None = None
    try:
        wait_for(lambda: "sync applied" in log.read_text(), 60, "the sync while the broker is down")
        broker.start()
        events = Events(broker.port, prefix)
        got = wait_for(lambda: events.of("dev-c", "applied") if events else None, 40, "the queued event")
        assert got[0]["revision"] == rev
        assert by_device(fleet(broker.url, prefix))["dev-c"]["online"] is True

        proc.send_signal(signal.SIGTERM)  # a clean stop says "offline" itself
        assert proc.wait(timeout=15) == 0
        assert by_device(fleet(broker.url, prefix))["dev-c"]["online"] is False
        assert len(events.of("dev-c", "applied")) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        if events is not None:
            events.close()
        broker.stop()


def test_fleet_status_lists_a_fleet_larger_than_the_brokers_queue(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Mosquitto holds at most ~1,000 QoS 1 messages per client; retained statuses must all arrive."""
    import paho.mqtt.client as mqtt

    prefix = f"big-{uuid.uuid4().hex[:8]}"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        for i in range(1500):
            payload = json.dumps({"schema": 1, "device": f"dev{i}", "stacks": {}, "published_at": time.time()})
            client.publish(f"{prefix}/dev{i}/status", payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    out = subprocess.run(
        [sys.executable, "-m", "gitops_edge", "fleet", "status", "--broker", f"mqtt://127.0.0.1:{mosquitto.port}",
         "--prefix", prefix, "--json"], capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    devices = json.loads(out.stdout)
    assert len(devices) == 1500
