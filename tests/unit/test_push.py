"""core.push: the refs topic, hint payloads, Git-server webhook signatures, the hint gate;
and the config keys of push hints, the webhook, secure MQTT and the Pushgateway."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from gitops_edge.core.push import (
    HintGate,
    parse_hint,
    push_event,
    ref_topic,
    same_ref,
    webhook_authentic,
)
from tests.unit.test_config import FILE, MINIMAL, error, load

SHA = "a" * 40
SECRET = b"s3cret"
BODY = json.dumps({"ref": "refs/heads/main", "after": "b" * 40}).encode()


class Headers(dict[str, str]):
    """Case-insensitive lookup, like http.server's HTTPMessage."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        for k, v in self.items():
            if k.lower() == key.lower():
                return v
        return default


def test_ref_topic_names_branches_and_tags_once() -> None:
    assert ref_topic("gitops-edge", "main") == "gitops-edge/refs/main"
    assert ref_topic("gitops-edge", "refs/heads/main") == "gitops-edge/refs/main"
    assert ref_topic("p", "refs/tags/v1.2") == "p/refs/v1.2"
    assert ref_topic("p", "release/stable") == "p/refs/release/stable"
    for bad in ("a+b", "x#", "/lead", "trail/", ""):
        with pytest.raises(ValueError):
            ref_topic("p", bad)


def test_a_hint_is_a_full_commit_id_and_nothing_else() -> None:
    assert parse_hint(SHA.encode()) == SHA
    assert parse_hint(f"  {SHA.upper()}\n".encode()) == SHA
    assert parse_hint(("c" * 64).encode()) == "c" * 64  # sha256 repositories
    for bad in (b"", b"abc1234", b"z" * 40, b'{"revision": "' + SHA.encode() + b'"}', b"\xff" * 40):
        assert parse_hint(bad) is None


def test_same_ref_compares_short_names() -> None:
    assert same_ref("main", "refs/heads/main") and same_ref("refs/heads/main", "main")
    assert not same_ref("main", "refs/heads/mainline") and not same_ref("v1", "refs/heads/v2")


def test_github_signature() -> None:
    good = "sha256=" + hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    assert webhook_authentic(SECRET, Headers({"X-Hub-Signature-256": good}), BODY)
    assert not webhook_authentic(SECRET, Headers({"X-Hub-Signature-256": good}), BODY + b" ")
    assert not webhook_authentic(b"other", Headers({"X-Hub-Signature-256": good}), BODY)
    assert not webhook_authentic(SECRET, Headers({"X-Hub-Signature-256": good[7:]}), BODY)  # no "sha256="


def test_gitea_and_forgejo_signature() -> None:
    good = hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    assert webhook_authentic(SECRET, Headers({"x-gitea-signature": good}), BODY)
    assert webhook_authentic(SECRET, Headers({"X-Forgejo-Signature": good}), BODY)
    assert not webhook_authentic(SECRET, Headers({"X-Gitea-Signature": good}), b"{}")


def test_gitlab_token() -> None:
    assert webhook_authentic(SECRET, Headers({"X-Gitlab-Token": "s3cret"}), BODY)
    assert not webhook_authentic(SECRET, Headers({"X-Gitlab-Token": "s3cre"}), BODY)


def test_no_signature_or_no_secret_authenticates_nothing() -> None:
    assert not webhook_authentic(SECRET, Headers({}), BODY)
    assert not webhook_authentic(SECRET, Headers({"X-Hub-Signature": "sha1=00"}), BODY)  # sha1 is not accepted
    assert not webhook_authentic(b"", Headers({"X-Gitlab-Token": ""}), BODY)


def test_push_event_reads_ref_and_after() -> None:
    ev = push_event(BODY)
    assert ev is not None and (ev.ref, ev.revision) == ("refs/heads/main", "b" * 40)
    deleted = push_event(json.dumps({"ref": "refs/heads/x", "after": "0" * 40}).encode())
    assert deleted is not None and deleted.revision is None
    assert push_event(b"not json") is None and push_event(b"[]") is None and push_event(b'{"zen": "hi"}') is None


def test_gate_a_burst_of_hints_is_one_poll() -> None:
    gate = HintGate(spread_s=2, min_gap_s=10)
    first = gate.offer("1" * 40, frozenset(), now=100, jitter=0.5)
    assert first == 101
    # a flood of forged hints (new ids every time) before that poll starts: nothing more
    assert all(gate.offer(f"{i:040x}", frozenset(), now=100 + i / 1000, jitter=0.1) is None for i in range(500))


def test_gate_spaces_hinted_polls_by_min_gap_and_keeps_a_late_hint() -> None:
    gate = HintGate(spread_s=2, min_gap_s=10)
    assert gate.offer(None, frozenset(), now=0, jitter=0) == 0
    gate.started()
    # a real second push 3 s later is not dropped: it runs when the gap ends
    assert gate.offer("2" * 40, frozenset(), now=3, jitter=0.5) == 10
    assert gate.offer("3" * 40, frozenset(), now=4, jitter=0.5) is None  # coalesced into that one
    gate.started()
    assert gate.offer("4" * 40, frozenset(), now=60, jitter=0.25) == 60.5  # long after: only the spread


def test_gate_ignores_a_commit_the_device_already_saw() -> None:
    gate = HintGate(spread_s=2, min_gap_s=10)
    assert gate.offer(SHA, frozenset({SHA}), now=0, jitter=0) is None
    assert gate.due_at is None  # and it does not use up the gap
    assert gate.offer("f" * 40, frozenset({SHA}), now=0, jitter=0) == 0


# -- config ---------------------------------------------------------------------------------


def test_hint_settings_and_defaults() -> None:
    cfg = load(MINIMAL)
    assert (cfg.source.hint_spread_s, cfg.source.hint_min_gap_s) == (2.0, 10.0)
    assert cfg.status.webhook_secret_file is None and cfg.metrics.pushgateway is None
    cfg = load(MINIMAL + "  hint_spread: 500ms\n  hint_min_gap: 1m\nstatus: {webhook_secret_file: /etc/hook}\n")
    assert (cfg.source.hint_spread_s, cfg.source.hint_min_gap_s) == (0.5, 60.0)
    assert cfg.status.webhook_secret_file == Path("/etc/hook")


def test_webhook_needs_the_status_listener() -> None:
    e = error(MINIMAL + "status: {listen: '', webhook_secret_file: /etc/hook}\n")
    assert str(e) == f"{FILE}:3: status.webhook_secret_file: needs status.listen (the webhook is served there)"


def test_secure_mqtt_keys() -> None:
    cfg = load(MINIMAL + "mqtt:\n  broker: mqtt://b:8883\n  ca_file: /ca.pem\n  cert_file: /c.pem\n"
               "  key_file: /k.pem\n  heartbeat: 5m\n  push: false\n")  # fmt: skip
    m = cfg.mqtt
    assert m is not None and m.tls and (m.cert_file, m.key_file) == (Path("/c.pem"), Path("/k.pem"))
    assert m.heartbeat_s == 300 and m.push is False
    dflt = load(MINIMAL + "mqtt: {broker: 'mqtt://b'}\n").mqtt
    assert dflt is not None and dflt.push and dflt.heartbeat_s == 900 and not dflt.tls
    e = error(MINIMAL + "mqtt:\n  broker: mqtt://b\n  cert_file: /c.pem\n")
    assert str(e).startswith(f"{FILE}:5: mqtt.cert_file: cert_file and key_file go together")
    assert str(error(MINIMAL + "mqtt:\n  broker: mqtt://b\n  heartbeat: 1s\n")).startswith(f"{FILE}:5: mqtt.heartbeat")
    assert "mqtt.push: must be true or false" in str(error(MINIMAL + "mqtt: {broker: 'mqtt://b', push: yes please}\n"))


def test_a_device_cannot_be_called_refs_with_mqtt() -> None:
    e = error("device: {id: refs}\n" + MINIMAL + "mqtt: {broker: 'mqtt://b'}\n")
    assert str(e).startswith(f"{FILE}:1: device.id: device.id 'refs' is reserved")
    assert load("device: {id: refs}\n" + MINIMAL).device.id == "refs"  # fine without mqtt


def test_pushgateway_url() -> None:
    cfg = load(MINIMAL + "metrics: {pushgateway: 'http://pgw.lan:9091', timeout: 2s}\n")
    assert (cfg.metrics.pushgateway, cfg.metrics.timeout_s) == ("http://pgw.lan:9091", 2.0)
    assert str(error(MINIMAL + "metrics: {pushgateway: 'pgw:9091'}\n")).startswith(f"{FILE}:3: metrics.pushgateway")
    assert "unknown key" in str(error(MINIMAL + "metrics: {push: 1}\n"))


def test_status_digest_ignores_only_the_timestamps() -> None:
    from gitops_edge.core.fleet_report import status_digest

    base = {"device": "d", "published_at": 1.0, "stacks": {"web": {"revision": "a"}},
            "last_sync": {"outcome": "unchanged", "revision": "a", "reason": "", "at": 5.0}}  # fmt: skip
    later = {**base, "published_at": 99.0, "last_sync": {**base["last_sync"], "at": 95.0}}  # type: ignore[dict-item]
    assert status_digest(base) == status_digest(later)
    moved = {**base, "last_sync": {**base["last_sync"], "revision": "b"}}  # type: ignore[dict-item]
    unhealthy = {**base, "stacks": {"web": {"revision": "a", "health": {"web": "unhealthy"}}}}
    assert len({status_digest(base), status_digest(moved), status_digest(unhealthy)}) == 3
    assert status_digest({**base, "last_sync": None}) != status_digest(base)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--ref", "main"], "needs --revision SHA, or --repo URL"),
        (["--ref", "main", "--revision", "abc1234"], "give the full commit id"),
        (["--ref", "a+b", "--revision", SHA], "cannot be an MQTT topic"),
        (["--ref", "main", "--revision", SHA, "--cert-file", "/c.pem"], "--cert-file and --key-file go together"),
    ],
)
def test_fleet_notify_usage_errors_exit_2_without_a_broker(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gitops_edge.cli.main import main

    assert main(["fleet", "notify", "--broker", "mqtt://127.0.0.1:1", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
