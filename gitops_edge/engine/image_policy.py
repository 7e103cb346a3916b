"""The VERIFY step: every image resolved to a digest and checked against the
device-local trust policy before anything is pulled or run (README.md, "Trust").

Verdicts are cached in the state store by digest and by a fingerprint of the
rule *and the contents of its key and trusted-root files*, so an unchanged
image is not re-verified every poll, yet a rotated key takes effect at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gitops_edge.core.image_ref import canonical, parse
from gitops_edge.core.serialize import to_data
from gitops_edge.core.trust import describe_rule, rule_for
from gitops_edge.errors import ConfigError, TrustError
from gitops_edge.model.trust import Evidence, TrustPolicy, TrustRule, TrustVerdict
from gitops_edge.ports.images import ImageVerifier

log = logging.getLogger("gitops_edge.engine.image_policy")


@dataclass
class VerdictCache:
    get: Callable[[str], str | None]
    put: Callable[[str, str], None]


def rule_fingerprint(rule: TrustRule) -> str:
    h = hashlib.sha256(json.dumps(to_data(rule), sort_keys=True, default=str).encode())
    for path in (*rule.keys, *([rule.trusted_root] if rule.trusted_root else [])):
        try:
            h.update(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"trust rule {rule.match!r}: cannot read {path}: {exc.strerror}") from None
    return h.hexdigest()


class ImagePolicy:
    """Applies a ``TrustPolicy`` with an ``ImageVerifier`` (registry + signatures)."""

    def __init__(self, policy: TrustPolicy, verifier: ImageVerifier, cache: VerdictCache | None = None) -> None:
        self.policy = policy
        self.verifier = verifier
        self.cache = cache

    def check(self, ref: str) -> TrustVerdict:
        """Verdict for one reference; ``TrustError`` when refused."""
        parsed = parse(ref)
        rule = rule_for(self.policy, ref)
        if rule is None:
            if self.policy.default == "allow":
                digest = parsed.digest or self.verifier.resolve_digest(ref)
                return TrustVerdict(ref, digest, True, None, "no rule matches; trust.default is allow")
            raise TrustError(
                f"image {ref}: no trust rule matches {canonical(parsed.repository)} and trust.default is deny"
            )
        if rule.require_digest and parsed.digest is None:
            raise TrustError(f"image {ref}: {describe_rule(rule)} requires a digest reference (image@sha256:...)")
        digest = parsed.digest or self.verifier.resolve_digest(ref)
        tag = f"{parsed.tag}:" if rule.signed_identity.mode == "exact" and parsed.tag else ""
        key = f"verdict:{digest}:{tag}{rule_fingerprint(rule)}"
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            evidence = tuple(Evidence(**e) for e in json.loads(hit))
            return TrustVerdict(ref, digest, True, rule.match, "verified (cached)", evidence)
        try:
            evidence = self.verifier.verify(parsed.repository, digest, rule, tag=parsed.tag)
        except TrustError as exc:
            raise TrustError(f"image {ref} refused by {describe_rule(rule)}: {exc.message}",
                             retry=exc.retry) from None
        if not evidence:  # fail closed, whatever the verifier returned
            raise TrustError(f"image {ref} refused by {describe_rule(rule)}: no evidence")
        if self.cache is not None:
            self.cache.put(key, json.dumps(to_data(evidence)))
        log.info("verified %s@%s: %s", parsed.repository, digest[:19],
                 "; ".join(f"{e.format} by {e.signer}" for e in evidence))
        return TrustVerdict(ref, digest, True, rule.match, "verified", evidence)

    def pinned(self, ref: str) -> str:
        """``repository@digest`` of a verified reference, the only form created from."""
        verdict = self.check(ref)
        return f"{parse(ref).repository}@{verdict.digest}"
