"""Quiet status: a real daemon on a real Mosquitto publishes its retained status only when it changed.

No-change polls send nothing; a heartbeat (``mqtt.heartbeat``) and every new
connection send it again. Messages are counted by a subscriber on the broker.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gitops_edge.adapters.files.config_file import load_config
from gitops_edge.wiring import Wiring
from tests.conftest import commit_files
from tests.integration.agent_harness import ROOT
from tests.support.mosquitto import Mosquitto
from tests.support.net import wait_for


class Counter:
    """Every message on ``topics`` (retained ones included), in arrival order."""

    def __init__(self, port: int, *topics: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"count-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_a: ready.set()
        self.client.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10), "the counter did not subscribe"

    def on(self, topic: str) -> list[bytes]:
        return [p for t, p in list(self.got) if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def quiet_device(tmp_path: Path, git_repo: Path, mosquitto: Mosquitto) -> Iterator[tuple[Path, str, str]]:
    """A device whose path holds no stack (nothing to run: only the reporting is under test)."""
    prefix = "q" + uuid.uuid4().hex[:8]
    commit_files(git_repo, {"devices/q/README": "no stacks here\n"})
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "device: {id: quiet-1}\n"
        f"source: {{url: '{git_repo}', ref: main, path: devices/q, interval: 1s, jitter: 0s, spread_start: false}}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        "status: {listen: ''}\n"
        f"mqtt: {{broker: '{mosquitto.url}', topic_prefix: {prefix}, keepalive: 5, push: false}}\n"
    )
    yield cfg, prefix, f"{prefix}/quiet-1"


def test_no_change_syncs_publish_no_status(mosquitto: Mosquitto, quiet_device: tuple[Path, str, str]) -> None:
    cfg, _prefix, base = quiet_device
    log = cfg.parent / "daemon.log"
    with log.open("w") as out:
        # debug: an idle poll's "sync unchanged at fetch" line is a DEBUG one (no log write per poll)
        proc = subprocess.Popen([sys.executable, "-m", "gitops_edge", "--config", str(cfg), "--log-level", "debug",
                                 "run"], cwd=ROOT, stdout=out, stderr=out)  # fmt: skip
    counter: Counter | None = None
    try:
        def unchanged() -> int:
            return len(re.findall(r"sync unchanged (?:at \w+ )?in", log.read_text()))

        wait_for(lambda: unchanged() >= 2, 60, "two syncs\n" + log.read_text())  # settled: nothing changes now
        counter = Counter(mosquitto.port, f"{base}/status", f"{base}/online")
        seen = unchanged()
        wait_for(lambda: unchanged() >= seen + 4, 60, "four more no-change syncs")
        proc.send_signal(signal.SIGTERM)  # a clean stop says "offline" on the same connection, after all else
        assert proc.wait(timeout=15) == 0
        wait_for(lambda: b"false" in counter.on(f"{base}/online") if counter else None, 20, "the offline flag")
        statuses = counter.on(f"{base}/status")
        assert len(statuses) == 1, statuses  # the retained one the subscription got; the polls added none
        assert json.loads(statuses[0])["last_sync"] is None  # unchanged syncs are not history rows
    finally:
        if proc.poll() is None:
            proc.kill()
        if counter is not None:
            counter.close()


def test_heartbeat_and_reconnect_republish_an_unchanged_status(
    mosquitto: Mosquitto, quiet_device: tuple[Path, str, str]
) -> None:
    cfg, _prefix, base = quiet_device
    config = load_config(cfg)
    assert config.mqtt is not None and config.mqtt.heartbeat_s == 900
    counter = Counter(mosquitto.port, f"{base}/status")
    reporter = Wiring(config).fleet_reporter(daemon=False)
    assert reporter is not None
    reporter.link.start()
    try:
        assert reporter.link.wait_connected(20)
        reporter.tick()  # the first one always goes
        for _ in range(5):  # syncs that changed nothing, rounds of the worker
            reporter.wake()
            reporter.tick()
        now = reporter.clock()
        reporter.clock = lambda: now + 901  # a heartbeat period later
        reporter.tick()
        wait_for(lambda: len(counter.on(f"{base}/status")) >= 2, 20, "the heartbeat")
        assert len(counter.on(f"{base}/status")) == 2  # in order: the five quiet rounds sent nothing
        reporter._connected()  # what paho calls after a reconnect (the broker may have lost it)
        reporter.tick()
        wait_for(lambda: len(counter.on(f"{base}/status")) >= 3, 20, "the status after a reconnect")
    finally:
        reporter.link.stop()
        counter.close()
