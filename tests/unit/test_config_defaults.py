"""Agent-config defaults are written once, in ``gitops_edge/model/config.py``.

The parser takes every default from the model's field defaults; the README, the
shipped example configs and the deploy files repeat some of them as text, so
these tests fail when one of them drifts from the model.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gitops_edge.adapters.files.config_file import load_config
from gitops_edge.core.config import parse_config
from gitops_edge.model.config import (
    DEFAULT_STATE_DIR,
    AgentConfig,
    DeviceConfig,
    HealthConfig,
    MqttConfig,
    SourceConfig,
    StatusConfig,
)
from gitops_edge.model.trust import CommitVerification, SecurityPolicy, TrustPolicy, TrustRule

ROOT = Path(__file__).resolve().parents[2]


def test_a_config_that_leaves_everything_out_gets_the_model_defaults() -> None:
    cfg = parse_config({"source": {"url": "/repo"}}, file="a.yaml", hostname="dev-1")
    assert cfg == AgentConfig(
        device=DeviceConfig(id="dev-1"),
        source=SourceConfig(url="/repo"),
        state_dir=Path(DEFAULT_STATE_DIR),
        config_file="a.yaml",
    )


def test_optional_sections_given_empty_get_the_model_defaults() -> None:
    cfg = parse_config(
        {
            "source": {"url": "/repo", "verify": {"allowed_signers": "/s"}},
            "health": {},
            "status": {},
            "notify": {},
            "security": {},
            "trust": {"images": [{"match": "r.example/*", "keys": ["/k.pub"]}]},
            "mqtt": {"broker": "mqtt://broker"},
        },
        file="a.yaml",
    )
    assert cfg.health == HealthConfig() and cfg.status == StatusConfig() and cfg.security == SecurityPolicy()
    assert cfg.source.verify is not None and cfg.source.verify.mode == CommitVerification.mode
    assert cfg.trust is not None and cfg.trust.default == TrustPolicy.default
    assert cfg.trust.rules[0].require_digest is TrustRule.require_digest
    assert cfg.mqtt == MqttConfig(host="broker")


def test_an_mqtts_broker_without_a_port_uses_the_tls_port() -> None:
    cfg = parse_config({"source": {"url": "/r"}, "mqtt": {"broker": "mqtts://broker"}}, file="a.yaml")
    assert cfg.mqtt is not None and (cfg.mqtt.port, cfg.mqtt.tls) == (8883, True)


def _assert_states_the_defaults(cfg: AgentConfig) -> None:
    """The values the documentation shows for keys it writes out are the defaults."""
    assert cfg.source.ref == SourceConfig.ref
    assert cfg.source.interval_s == SourceConfig.interval_s
    assert cfg.source.jitter_s == SourceConfig.jitter_s
    assert str(cfg.state_dir) == DEFAULT_STATE_DIR
    assert cfg.health == HealthConfig()
    assert cfg.status == StatusConfig()


def test_the_example_agent_config_shows_the_defaults() -> None:
    cfg = load_config(ROOT / "config" / "agent.example.yaml", environ={})
    _assert_states_the_defaults(cfg)
    assert cfg.source.timeout_s == SourceConfig.timeout_s


def test_the_readme_device_config_shows_the_defaults() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using it on a device", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None, "README: no yaml block under 'Using it on a device'"
    _assert_states_the_defaults(parse_config(yaml.safe_load(block.group(1)), file="README.md"))
    assert f"({StatusConfig.listen})" in readme  # the status endpoint's default address, as text


def test_the_deploy_files_use_the_default_state_dir_and_status_port() -> None:
    port = StatusConfig.listen.rsplit(":", 1)[1]
    for name in ("deploy/compose.yaml", "deploy/install.sh", "deploy/gitops-edge.service", "Dockerfile"):
        assert DEFAULT_STATE_DIR in (ROOT / name).read_text(), name
    for name in ("deploy/compose.yaml", "Dockerfile"):
        assert f"http://127.0.0.1:{port}/healthz" in (ROOT / name).read_text(), name
