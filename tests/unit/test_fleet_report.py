"""Fleet status over MQTT, pure parts: config, topics, payloads, the fleet table."""

from __future__ import annotations

import json

import pytest

from gitops_edge.core.config import parse_config
from gitops_edge.core.config_mqtt import check_prefix, parse_broker
from gitops_edge.core.fleet_report import (
    collect,
    event_for,
    event_payload,
    fleet_rows,
    health_summary,
    status_payload,
    topic,
)
from gitops_edge.errors import ConfigError

STATUS = {
    "device": "d1",
    "source": {"url": "https://git/x.git", "ref": "main", "path": "."},
    "trust": "no trust policy: images run unverified",
    "engine_error": None,
    "lock": {"who": "tech", "reason": "maintenance", "at": 1.0},
    "last_sync": {"revision": "a" * 40, "outcome": "rolled_back", "reason": "web died", "at": 1000.0, "age_s": 5},
    "stacks": [
        {"stack": "app", "revision": "a" * 40, "applied_at": 1.0, "quarantined": {"revision": "b" * 40, "reason": "x"},
         "ready": "False", "reason": "RolledBack", "message": "commit bbbbbbbbbbbb quarantined: x",
         "services": [{"service": "web", "health": "healthy"}, {"service": "db", "health": "running"}],
         "automation_stopped": None, "suspended": None},
        {"stack": "mon", "revision": "c" * 40, "applied_at": 1.0, "quarantined": None,
         "ready": "Unknown", "reason": "Suspended", "message": "suspended: hand",
         "services": [{"service": "agent", "health": "unhealthy"}], "automation_stopped": None, "suspended": "hand"},
    ],
}


def test_broker_urls_and_prefixes() -> None:
    assert parse_broker("mqtt://127.0.0.1:1884") == ("127.0.0.1", 1884, False)
    assert parse_broker("mqtt://broker.lan") == ("broker.lan", 1883, False)
    assert parse_broker("mqtts://broker.lan") == ("broker.lan", 8883, True)
    assert parse_broker("mqtt://[::1]:1883") == ("::1", 1883, False)
    for bad in ("http://h:1883", "mqtt://", "mqtt://h:99999", "h:1883"):
        with pytest.raises(ValueError):
            parse_broker(bad)
    assert check_prefix("acme/fleet") == "acme/fleet"
    for bad in ("a/+/b", "#", "/a", "a/", "a b", ""):
        with pytest.raises(ValueError):
            check_prefix(bad)


def test_mqtt_config_section() -> None:
    cfg = parse_config({"source": {"url": "/r"}, "mqtt": {"broker": "mqtts://b:8884", "username": "dev",
                        "password_file": "/etc/pw", "topic_prefix": "acme"}}, file="a.yaml")  # fmt: skip
    assert cfg.mqtt is not None
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls, cfg.mqtt.topic_prefix) == ("b", 8884, True, "acme")
    assert str(cfg.mqtt.password_file) == "/etc/pw" and cfg.mqtt.username == "dev"
    assert parse_config({"source": {"url": "/r"}}, file="a.yaml").mqtt is None
    for bad, key in (({"broker": "http://x"}, "mqtt.broker"), ({}, "mqtt"), ({"broker": "mqtt://x", "x": 1}, "mqtt.x"),
                     ({"broker": "mqtt://x", "topic_prefix": "a/#"}, "mqtt.topic_prefix"),
                     ({"broker": "mqtt://x", "keepalive": 1}, "mqtt.keepalive")):  # fmt: skip
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            parse_config({"source": {"url": "/r"}, "mqtt": bad}, file="a.yaml")


def test_topics_keep_the_device_in_one_level() -> None:
    assert topic("gitops-edge", "d1", "status") == "gitops-edge/d1/status"
    assert topic("p", "a/b+#", "events") == "p/a_b__/events"


def test_status_payload_shape() -> None:
    p = status_payload(STATUS, {"site": "farm"}, "0.1.0", 2000.0)
    assert json.loads(json.dumps(p)) == p
    assert p["device"] == "d1" and p["labels"] == {"site": "farm"} and p["agent_version"] == "0.1.0"
    assert p["stacks"]["app"] == {"revision": "a" * 40, "health": {"web": "healthy", "db": "running"},
                                  "ready": "False", "reason": "RolledBack",
                                  "message": "commit bbbbbbbbbbbb quarantined: x",
                                  "suspended": None, "automation_stopped": None}  # fmt: skip
    assert p["quarantined"] == [{"stack": "app", "revision": "b" * 40, "reason": "x"}]
    assert p["last_sync"] == {"outcome": "rolled_back", "revision": "a" * 40, "reason": "web died", "at": 1000.0}
    assert p["lock"]["who"] == "tech"


def test_events_for_outcomes() -> None:
    assert [event_for(o) for o in ("applied", "rolled_back", "refused", "unchanged", "error", "skipped")] == [
        "applied", "rollback", "refusal", None, None, None]  # fmt: skip
    e = event_payload("rollback", "d1", "a" * 40, "web died", ["start web"], 5.0)
    assert e["event"] == "rollback" and e["device"] == "d1" and len(e["id"]) == 16
    assert e["id"] != event_payload("rollback", "d1", "a" * 40, "web died", [], 6.0)["id"]


def test_collect_and_rows() -> None:
    prefix = "p"
    msgs = {
        "p/d1/status": json.dumps(status_payload(STATUS, {}, "0.1.0", 2000.0)).encode(),
        "p/d1/online": b"true",
        "p/d2/online": b"false",
        "p/d3/status": b"not json",
        "other/d9/status": b"{}",
        "p/d1/events": b"{}",
    }
    entries = collect(msgs, prefix)
    assert [e["device"] for e in entries] == ["d1", "d2", "d3"]
    assert [e["online"] for e in entries] == [True, False, None]
    assert entries[2]["status"] is None
    rows = fleet_rows(entries, now=1090.0)
    assert rows[0] == ("DEVICE", "ONLINE", "REVISION", "HEALTH", "LAST SYNC")
    # app's services are all fine, but its last update rolled back: the device is not "all healthy"
    assert rows[1] == ("d1", "yes", f"app@{'a' * 7} mon@{'c' * 7}", "app: RolledBack, mon: Suspended",
                       "90s ago rolled_back")
    assert rows[2] == ("d2", "no", "-", "-", "-")
    assert health_summary({"stacks": {"a": {"health": {"w": "healthy"}}}}) == "all healthy"  # an older agent
    assert health_summary({"stacks": {"a": {"ready": "True", "health": {"w": "healthy"}}}}) == "all healthy"
    quarantined = {"stacks": {"a": {"ready": "False", "reason": "Quarantined", "health": {"w": "healthy"}}}}
    assert health_summary(quarantined) == "a: Quarantined"
    assert health_summary({"stacks": {}}) == "no services"
