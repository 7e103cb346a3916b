"""Trust and device security policy (README.md, "Trust"): device-local, never from Git.

The repository is what is being verified, so it cannot also be what vouches:
these come only from the agent config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# the device's policy sections live in model.policy (read on every start); the names stay here too
from gitops_edge.model.policy import CommitVerification as CommitVerification
from gitops_edge.model.policy import RegistriesConfig as RegistriesConfig
from gitops_edge.model.policy import SecurityPolicy as SecurityPolicy


@dataclass(frozen=True)
class KeylessIdentity:
    """A sigstore keyless signer: an OIDC issuer plus the certificate identity."""

    issuer: str
    subject: str | None = None  # exact match
    subject_regex: str | None = None  # full match (re.fullmatch)


@dataclass(frozen=True)
class SignedIdentity:
    """How a simple-signing payload's ``docker-reference`` must name the image (containers-policy.json's
    ``signedIdentity``).

    ``repository``: same repository, any tag (cosign signs without a tag; skopeo
    and podman sign ``repo:tag``). ``exact``: same repository and the very tag
    (or digest) the image was referenced by. ``remap``: an image whose
    repository starts with ``prefix`` (a mirror) is compared as if it started
    with ``signed_prefix`` (the name it was signed under), then as ``repository``.
    """

    mode: str = "repository"  # repository | exact | remap
    prefix: str = ""  # remap: canonical repository prefix of the mirror ("127.0.0.1:5055/mirror")
    signed_prefix: str = ""  # remap: what it stands for ("registry.example/team")


@dataclass(frozen=True)
class TrustRule:
    match: str  # shell glob on the repository (host[:port]/path, no tag or digest)
    keys: tuple[Path, ...] = ()  # cosign public keys, SPKI PEM
    keyless: tuple[KeylessIdentity, ...] = ()
    trusted_root: Path | None = None  # sigstore trusted_root.json; None: the sigstore package's
    require_digest: bool = False  # the compose file must pin the image by digest
    signed_identity: SignedIdentity = SignedIdentity()
    tlog: str = "optional"  # optional | required: key signatures must also be in a transparency log


@dataclass(frozen=True)
class TrustPolicy:
    default: str = "deny"  # deny | allow: images matching no rule
    rules: tuple[TrustRule, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """What made a signature acceptable."""

    format: str  # cosign-sig | cosign-sig-keyless | bundle-key | bundle-keyless
    signer: str  # key path, or "issuer: subject"
    detail: str = ""  # where it was found and what it signs
    log: str = ""  # the transparency log entry relied on ("rekor index N, SET"), "" for none
    time_source: str = ""  # verified signing time and where it came from, "" when no time was needed


@dataclass(frozen=True)
class TrustVerdict:
    image: str  # the reference as written
    digest: str  # sha256:... that was verified
    allowed: bool
    rule: str | None  # the matching rule's `match`, or None (default applied)
    reason: str
    evidence: tuple[Evidence, ...] = ()
