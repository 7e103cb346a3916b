"""The shipped examples stay valid: the agent config parses, the fleet validates."""

from pathlib import Path

from gitops_edge.adapters.files.config_file import load_config
from gitops_edge.adapters.files.desired_state import load_desired_state, validate_tree

ROOT = Path(__file__).resolve().parents[2]


def test_example_agent_config_loads() -> None:
    cfg = load_config(ROOT / "config" / "agent.example.yaml", environ={})
    assert cfg.device.id == "sensor-001"
    assert cfg.source.interval_s == 60 and cfg.health.stable_for_s == 10
    assert ("ring", "canary") in cfg.device.labels


def test_example_fleet_is_valid() -> None:
    fleet = ROOT / "config" / "example-fleet"
    assert validate_tree(fleet, "devices/sensor-001") == []
    desired = load_desired_state(fleet, "devices/sensor-001", "0" * 40)
    [web] = desired.stacks
    assert web.name == "web"
    assert {s.name for s in web.services} == {"collector", "web"}
    assert dict(web.service("web").environment)["LOG_LEVEL"] == "info"


def test_full_example_config_loads_every_section() -> None:
    cfg = load_config(ROOT / "config" / "agent.full.example.yaml", environ={})
    assert cfg.source.ref == "release/canary" and cfg.source.path == "devices/sensor-001"
    assert cfg.source.verify is not None and cfg.source.verify.mode == "ssh"
    assert cfg.trust is not None and [r.match for r in cfg.trust.rules] == ["registry.example.com/acme/*",
                                                                            "ghcr.io/acme/*"]
    assert cfg.trust.rules[1].keyless[0].subject_regex
    assert cfg.trust.rules[0].tlog == "required" and cfg.trust.rules[0].signed_identity.mode == "repository"
    assert cfg.security.allowed_capabilities == ("NET_ADMIN",)
    assert len(cfg.update_windows) == 2 and cfg.notify.webhook
    assert cfg.mqtt is not None and cfg.mqtt.cert_file is not None and cfg.mqtt.username == "sensor-001"
    assert cfg.metrics.pushgateway and cfg.source.hint_min_gap_s == 10
