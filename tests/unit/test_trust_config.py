"""The trust rule keys of the agent config: signed_identity and tlog, with located errors."""

from __future__ import annotations

import pytest

from gitops_edge.adapters.files.yaml_reader import parse_yaml
from gitops_edge.core.config import parse_config
from gitops_edge.errors import ConfigError
from gitops_edge.model.config import AgentConfig
from gitops_edge.model.trust import SignedIdentity, TrustRule

FILE = "/etc/gitops-edge/config.yaml"
HEAD = "source:\n  url: https://git.example.com/fleet.git\ntrust:\n  images:\n    - match: 127.0.0.1:5055/mirror/*\n" \
       "      keys: [/etc/k.pub]\n"


def load(rule_extra: str) -> AgentConfig:
    doc = parse_yaml(HEAD + rule_extra, FILE)
    return parse_config(doc.data, file=FILE, lines=doc.lines,  # type: ignore[arg-type]
                        environ={}, hostname="host-1")


def rule(rule_extra: str) -> TrustRule:
    cfg = load(rule_extra)
    assert cfg.trust is not None
    return cfg.trust.rules[0]


def test_defaults() -> None:
    r = rule("")
    assert r.signed_identity == SignedIdentity(mode="repository") and r.tlog == "optional"


def test_modes_and_remap() -> None:
    assert rule("      signed_identity: exact\n").signed_identity.mode == "exact"
    remap = rule("      signed_identity: {prefix: 127.0.0.1:5055/mirror/, signed_prefix: index.docker.io/acme}\n")
    assert remap.signed_identity == SignedIdentity(mode="remap", prefix="127.0.0.1:5055/mirror",
                                                   signed_prefix="docker.io/acme")
    assert rule("      tlog: required\n").tlog == "required"


@pytest.mark.parametrize("extra, where, what", [
    ("      signed_identity: loose\n", "signed_identity", "must be repository, exact"),
    ("      signed_identity: {prefix: a.example/x}\n", "signed_identity", "signed_prefix is required"),
    ("      signed_identity: {prefix: a.example/x, signed_prefix: b.example/y, extra: 1}\n", "extra", "unknown key"),
    ("      signed_identity: {prefix: mirror, signed_prefix: b.example/y}\n", "prefix", "registry host"),
    ("      signed_identity: {prefix: a.example/x:v1, signed_prefix: b.example/y}\n", "prefix", "no tag or digest"),
    ("      tlog: always\n", "tlog", "must be optional or required"),
])
def test_bad_values_name_file_line_and_key(extra: str, where: str, what: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(extra)
    text = str(info.value)
    assert text.startswith(f"{FILE}:") and where in text and what in text, text
