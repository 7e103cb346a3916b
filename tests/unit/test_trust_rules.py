"""Which trust rule governs an image: pure, first match wins."""

from pathlib import Path

from gitops_edge.core.image_ref import canonical
from gitops_edge.core.trust import describe_rule, rule_for
from gitops_edge.model.trust import KeylessIdentity, TrustPolicy, TrustRule

ACME = TrustRule(match="registry.example.com/acme/*", keys=(Path("/k/acme.pub"),))
LOOP = TrustRule(match="127.0.0.1:5055/edge/*", keys=(Path("/k/edge.pub"),))
HUB = TrustRule(match="docker.io/library/nginx", keyless=(KeylessIdentity("https://issuer", "me@x"),))
POLICY = TrustPolicy(default="deny", rules=(ACME, LOOP, HUB))


def test_canonical_repository_names() -> None:
    assert canonical("nginx") == "docker.io/library/nginx"
    assert canonical("acme/app") == "docker.io/acme/app"
    assert canonical("index.docker.io/acme/app") == "docker.io/acme/app"
    assert canonical("127.0.0.1:5055/edge/app") == "127.0.0.1:5055/edge/app"
    assert canonical("localhost/app") == "localhost/app"


def test_first_matching_rule_wins_and_tags_digests_do_not_matter() -> None:
    assert rule_for(POLICY, "registry.example.com/acme/web:1.2") is ACME
    assert rule_for(POLICY, "127.0.0.1:5055/edge/app@sha256:" + "a" * 64) is LOOP
    assert rule_for(POLICY, "nginx:1.27") is HUB
    assert rule_for(POLICY, "docker.io/library/nginx") is HUB
    first = TrustPolicy(rules=(TrustRule(match="127.0.0.1:5055/*", keys=(Path("/a"),)), LOOP))
    assert rule_for(first, "127.0.0.1:5055/edge/app:v1") is first.rules[0]


def test_no_rule_for_other_repositories() -> None:
    assert rule_for(POLICY, "registry.example.com/other/web:1") is None
    assert rule_for(POLICY, "evil.example.com/acme/web:1") is None
    assert rule_for(POLICY, "nginxx") is None
    assert rule_for(TrustPolicy(), "anything") is None


def test_rule_description_names_signers() -> None:
    assert "/k/acme.pub" in describe_rule(ACME)
    assert "https://issuer me@x" in describe_rule(HUB)
