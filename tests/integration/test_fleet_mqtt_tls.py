"""Secure MQTT with a real Mosquitto: TLS with a private CA, client certificates, passwords, an ACL.

The broker's ACL is the one docs/fleet.md recommends: a device writes only under
``<prefix>/<its username>/#`` and reads only the refs topics; the CI user writes
the refs topics and reads everything.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gitops_edge.adapters.files.config_file import load_config
from gitops_edge.adapters.mqtt.link import MqttLink
from gitops_edge.model.config import AgentConfig
from gitops_edge.report.mqtt_status import publish_once
from gitops_edge.wiring import Wiring
from tests.integration.agent_harness import ROOT
from tests.support.mosquitto import SecureMosquitto
from tests.support.net import wait_for
from tests.support.tls import CertAuthority, Pair

PREFIX = "fleet"
PASSWORDS = {"dev-a": "pw-a", "dev-b": "pw-b", "ci": "pw-ci"}
ACL = f"""\
# CI and operators: publish the push hints, read the whole fleet
user ci
topic write {PREFIX}/refs/#
topic read {PREFIX}/#

# every device (username = device id): its own topics, and the push hints
pattern write {PREFIX}/%u/#
pattern read {PREFIX}/refs/#
"""


@dataclass
class Pki:
    workdir: Path
    ca: CertAuthority
    clients: dict[str, Pair]
    broker: SecureMosquitto

    def password_file(self, user: str, password: str | None = None) -> Path:
        p = self.workdir / f"{user}-{uuid.uuid4().hex[:6]}.pw"
        p.write_text((password or PASSWORDS[user]) + "\n")
        return p


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    work = tmp_path_factory.mktemp("mqtt-tls")
    ca = CertAuthority(work / "pki")
    server = ca.issue("broker", server=True)
    clients = {user: ca.issue(user) for user in PASSWORDS}
    broker = SecureMosquitto(work / "broker", ca=ca.pem, cert=server.cert, key=server.key, passwords=PASSWORDS, acl=ACL)
    try:
        broker.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield Pki(work, ca, clients, broker)
    broker.stop()


class Watcher:
    """The CI user, subscribed to everything under the prefix over TLS."""

    def __init__(self, pki: Pki) -> None:
        self.got: list[tuple[str, bytes]] = []
        ready = threading.Event()
        self.client = tls_client(pki, "ci")
        self.client.on_connect = lambda c, *_a: c.subscribe(f"{PREFIX}/#", qos=1)
        self.client.on_subscribe = lambda *_a: ready.set()
        self.client.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", pki.broker.port)
        self.client.loop_start()
        assert ready.wait(10), "the watcher did not subscribe"

    def on(self, topic: str) -> list[bytes]:
        return [p for t, p in list(self.got) if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def tls_client(pki: Pki, user: str) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}")
    pair = pki.clients[user]
    c.tls_set(ca_certs=str(pki.ca.pem), certfile=str(pair.cert), keyfile=str(pair.key), cert_reqs=ssl.CERT_REQUIRED)
    c.username_pw_set(user, PASSWORDS[user])
    return c


@pytest.fixture
def watcher(pki: Pki) -> Iterator[Watcher]:
    w = Watcher(pki)
    yield w
    w.close()


def device_config(pki: Pki, tmp_path: Path, device: str, password: str | None = None) -> AgentConfig:
    pair = pki.clients[device]
    cfg = tmp_path / f"{device}.yaml"
    cfg.write_text(
        f"device: {{id: {device}}}\n"
        f"source: {{url: '{tmp_path / 'repo'}', ref: main}}\n"
        f"state_dir: {tmp_path / device}\n"
        "status: {listen: ''}\n"
        "mqtt:\n"
        f"  broker: {pki.broker.url}\n"
        f"  topic_prefix: {PREFIX}\n"
        f"  ca_file: {pki.ca.pem}\n"
        f"  cert_file: {pair.cert}\n"
        f"  key_file: {pair.key}\n"
        f"  username: {device}\n"
        f"  password_file: {pki.password_file(device, password)}\n"
    )
    return load_config(cfg)


def test_a_device_reports_over_tls_with_its_certificate_and_password(
    pki: Pki, watcher: Watcher, tmp_path: Path
) -> None:
    config = device_config(pki, tmp_path, "dev-a")
    assert config.mqtt is not None and config.mqtt.tls
    reporter = Wiring(config).fleet_reporter(daemon=False)
    assert reporter is not None
    publish_once(reporter, timeout_s=20)
    [status] = wait_for(lambda: watcher.on(f"{PREFIX}/dev-a/status"), 20, "dev-a's status over TLS")
    assert b'"device": "dev-a"' in status


def test_a_hint_from_ci_reaches_the_device_over_tls(pki: Pki, tmp_path: Path) -> None:
    heard: list[tuple[str | None, str]] = []
    config = device_config(pki, tmp_path, "dev-b")
    reporter = Wiring(config).fleet_reporter(daemon=True, on_hint=lambda rev, origin: heard.append((rev, origin)))
    assert reporter is not None
    reporter.start()
    try:
        assert reporter.link.wait_connected(20), reporter.link.where
        sha = uuid.uuid4().hex + "0" * 8
        ci = pki.clients["ci"]
        out = subprocess.run(
            [sys.executable, "-m", "gitops_edge", "fleet", "notify", "--broker", pki.broker.url, "--prefix", PREFIX,
             "--ca-file", str(pki.ca.pem), "--cert-file", str(ci.cert), "--key-file", str(ci.key),
             "--username", "ci", "--password-file", str(pki.password_file("ci")), "--ref", "refs/heads/main",
             "--revision", sha],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        wait_for(lambda: (sha, "mqtt") in heard, 20, "the hint at the device")
    finally:
        reporter.stop()


def test_a_device_cannot_publish_under_another_devices_topic_or_a_ref(pki: Pki, watcher: Watcher) -> None:
    forged_sha = uuid.uuid4().hex + "f" * 8  # other tests leave retained messages on these topics
    client = tls_client(pki, "dev-a")
    client.connect("127.0.0.1", pki.broker.port)
    client.loop_start()
    try:
        publish: Callable[[str, bytes], None] = lambda t, p: client.publish(t, p, qos=1).wait_for_publish(10)  # noqa: E731
        publish(f"{PREFIX}/dev-b/status", b'{"device": "dev-b", "forged": true}')
        publish(f"{PREFIX}/refs/main", forged_sha.encode())
        publish(f"{PREFIX}/dev-a/events", b"marker")  # its own topic: allowed, and sent after the others
        wait_for(lambda: watcher.on(f"{PREFIX}/dev-a/events"), 20, "dev-a's own message")
    finally:
        client.loop_stop()
        client.disconnect()
    # one client's messages arrive in order: had the broker let the others through, they would be here
    assert not [p for p in watcher.on(f"{PREFIX}/dev-b/status") if b"forged" in p]
    assert forged_sha.encode() not in watcher.on(f"{PREFIX}/refs/main")


def test_a_wrong_password_is_refused_by_the_broker(pki: Pki, tmp_path: Path) -> None:
    config = device_config(pki, tmp_path, "dev-a", password="not-it")
    assert config.mqtt is not None
    link = MqttLink(config.mqtt, f"dev-a-{uuid.uuid4().hex[:6]}")
    link.start()
    try:
        wait_for(lambda: "refused" in link.last_error, 20, "the broker's refusal")
        assert not link.connected
    finally:
        link.stop()
