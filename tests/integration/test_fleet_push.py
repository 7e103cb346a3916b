"""Push-triggered pull with a real daemon, Mosquitto, Git repo and engine.

The device polls once an hour; only a hint can make it take a new commit within
the test. Hints come from `gitops-edge fleet notify` (the retained refs topic)
and from a signed Git-server webhook on the status listener. Neither is trusted:
a forged hint costs one poll that finds nothing, a wrong signature is a 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import docker
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gitops_edge.demo import tinyimage
from tests.integration.agent_harness import ROOT, Device
from tests.support.mosquitto import Mosquitto
from tests.support.net import wait_for

SERVE = json.dumps(tinyimage.SERVE)
SECRET = "webhook-secret-1"


def stack(image: str, mode: str) -> str:
    return f"services:\n  web:\n    image: {image}\n    command: {SERVE}\n    environment: {{MODE: {mode}}}\n"


class Daemon:
    def __init__(self, dev: Device) -> None:
        self.log = dev.workdir / "daemon.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gitops_edge", "--config", str(dev.config), "run"],
            cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def text(self) -> str:
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({self.proc.returncode}):\n{self.log.read_text()}")
        return self.log.read_text()

    def applied(self, revision: str) -> bool:
        return re.search(r"sync applied (?:at \w+ )?in [\d.]+s: " + revision[:12], self.text()) is not None

    def syncs(self) -> int:
        return len(re.findall(r"sync \w+ (?:at \w+ )?in [\d.]+s", self.text()))

    def port(self) -> int:
        m = re.search(r"status on http://127\.0\.0\.1:(\d+)/", self.text())
        assert m, self.text()
        return int(m.group(1))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def run_fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops_edge", "fleet", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def post_hook(port: int, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/git", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_notify_and_webhook_make_an_hourly_device_pull_now(
    device: Device,
    mosquitto: Mosquitto,
    docker_client: docker.DockerClient,
    test_images: dict[str, str],
    cleanup_stacks: list[str],
    stack_name: str,
    tmp_path: Path,
) -> None:
    prefix = "p" + uuid.uuid4().hex[:8]
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    cleanup_stacks.append(stack_name)
    device.interval, device.jitter = "1h", "0s"
    device.source_extra = ", spread_start: false, hint_min_gap: 1s, hint_spread: 1s"
    device.status_listen = f"127.0.0.1:0', webhook_secret_file: '{secret}"  # rides inside the harness's quotes
    device.extra_config = f"mqtt: {{broker: '{mosquitto.url}', topic_prefix: {prefix}, keepalive: 5}}\n"
    v1 = device.commit({f"{stack_name}/compose.yaml": stack(test_images["v1"], "one")})
    d = Daemon(device)
    try:
        wait_for(lambda: d.applied(v1), 90, "the first sync")

        # 1. the fleet repo's CI: `fleet notify` reads the ref with ls-remote and publishes it
        v2 = device.commit({f"{stack_name}/compose.yaml": stack(test_images["v2"], "two")})
        out = run_fleet("notify", "--broker", mosquitto.url, "--prefix", prefix, "--ref", "main",
                        "--repo", str(device.repo))  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [f"{prefix}/refs/main", v2]
        wait_for(lambda: d.applied(v2), 90, "the hinted sync of v2")  # the interval is an hour
        assert "push hint (mqtt) for " + v2[:12] in d.text()

        # 2. a webhook with a wrong, then with no signature: 401 and no poll
        v3 = device.commit({f"{stack_name}/compose.yaml": stack(test_images["v3"], "three")})
        body = json.dumps({"ref": "refs/heads/main", "after": v3, "repository": {"name": "fleet"}}).encode()
        bad = "sha256=" + hmac.new(b"wrong", body, hashlib.sha256).hexdigest()
        port = d.port()
        assert post_hook(port, body, {"X-Hub-Signature-256": bad, "X-GitHub-Event": "push"}) == 401
        assert post_hook(port, body, {"X-GitHub-Event": "push"}) == 401
        assert post_hook(port, body, {"X-Gitlab-Token": "webhook-secret-2"}) == 401
        assert "push hint (webhook)" not in d.text()
        # a push to another branch is acknowledged and ignored
        other = json.dumps({"ref": "refs/heads/dev", "after": v3}).encode()
        good_other = hmac.new(SECRET.encode(), other, hashlib.sha256).hexdigest()
        assert post_hook(port, other, {"X-Gitea-Signature": good_other}) == 200
        assert "push hint (webhook)" not in d.text()

        # 3. the signed one (GitHub style) starts the sync
        good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert post_hook(port, body, {"X-Hub-Signature-256": good, "X-GitHub-Event": "push"}) == 202
        wait_for(lambda: d.applied(v3), 90, "the webhook-hinted sync of v3")

        # 4. a forged retained hint: one poll that finds the ref where it was, nothing applied
        before = d.syncs()
        forged = uuid.uuid4().hex + "deadbeef"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"forger-{uuid.uuid4().hex[:6]}")
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        try:
            client.publish(f"{prefix}/refs/main", forged, qos=1, retain=True).wait_for_publish(10)
        finally:
            client.loop_stop()
            client.disconnect()
        wait_for(lambda: d.syncs() > before, 60, "the poll the forged hint caused")
        assert f"push hint (mqtt) for {forged[:12]}" in d.text()
        tail = d.text().split(f"push hint (mqtt) for {forged[:12]}", 1)[1]
        assert re.search(r"sync unchanged (?:at \w+ )?in [\d.]+s: " + v3[:12], tail), tail
        assert len(re.findall(r"sync applied (?:at \w+ )?in ", d.text())) == 3
    finally:
        d.close()


def test_webhook_route_on_the_status_server(tmp_path: Path) -> None:
    """The route itself (no daemon): opt-in, ping, not-a-push, another ref, a rotated secret."""
    from gitops_edge.daemon.status_server import PushWebhook, StatusServer

    heard: list[tuple[str | None, str]] = []
    secret = tmp_path / "secret"
    secret.write_text(SECRET)

    def server(webhook: PushWebhook | None) -> StatusServer:
        s = StatusServer("127.0.0.1:0", healthy=lambda: True, ready=lambda: True, status=dict,
                         metrics=lambda: b"", webhook=webhook)  # fmt: skip
        s.start()
        return s

    def gitea(body: bytes, key: str = SECRET) -> dict[str, str]:
        return {"X-Gitea-Signature": hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}

    plain = server(None)
    try:
        assert post_hook(plain.port, b"{}", gitea(b"{}")) == 404  # not configured: no route
    finally:
        plain.stop()
    hooked = server(PushWebhook(secret, "main", lambda rev, origin: heard.append((rev, origin))))
    try:
        ping = json.dumps({"zen": "hi", "hook_id": 1}).encode()
        assert post_hook(hooked.port, ping, {**gitea(ping), "X-Gitea-Event": "ping"}) == 200
        assert post_hook(hooked.port, b"[1, 2]", gitea(b"[1, 2]")) == 400
        sha = "c" * 40
        push = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
        secret.write_text("rotated")  # read per request: the old secret stops working at once
        assert post_hook(hooked.port, push, gitea(push)) == 401
        assert heard == []
        assert post_hook(hooked.port, push, gitea(push, "rotated")) == 202
        assert post_hook(hooked.port, push, {"X-Gitlab-Token": "rotated"}) == 202
        assert heard == [(sha, "webhook"), (sha, "webhook")]
    finally:
        hooked.stop()
