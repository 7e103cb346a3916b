"""Trust policy decisions: which rule governs an image (first match wins)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from gitops_edge.core.image_ref import canonical, parse
from gitops_edge.model.trust import TrustPolicy, TrustRule


def rule_for(policy: TrustPolicy, ref: str) -> TrustRule | None:
    """The first rule whose ``match`` glob matches the image's full repository name."""
    repo = canonical(parse(ref).repository)
    for rule in policy.rules:
        if fnmatchcase(repo, rule.match) or fnmatchcase(repo, canonical(rule.match)):
            return rule
    return None


def describe_rule(rule: TrustRule) -> str:
    signers = [str(k) for k in rule.keys] + [
        f"{i.issuer} {i.subject or '~' + (i.subject_regex or '')}" for i in rule.keyless
    ]
    return f"rule {rule.match!r} ({', '.join(signers)})"
