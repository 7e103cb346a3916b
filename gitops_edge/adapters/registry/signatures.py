"""``SignatureVerifier``: find an image's signatures in its registry and check them.

Discovery looks everywhere cosign and the sigstore tools write:

- the legacy ``sha256-<hex>.sig`` tag (cosign's default, key or keyless);
- OCI 1.1 referrers, from the referrers API and from its fallback tag
  index ``sha256-<hex>`` (a copy of the image may carry either): sigstore
  bundles (``cosign sign --new-bundle-format``, sigstore-js, ...) and
  cosign's ``--registry-referrers-mode=oci-1-1`` signature manifests
  (artifact type ``application/vnd.dev.cosign.artifact.sig.v1+json``,
  layers as in a ``.sig`` manifest).

Each candidate is checked in ``verify_one``. Fail closed: every candidate
that is malformed, unverifiable or about something else becomes a reason,
and no acceptable candidate is a ``TrustError`` listing those reasons.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from gitops_edge.adapters.registry.client import MAX_BLOB_BYTES, RegistryClient
from gitops_edge.adapters.registry.signature_crypto import PublicKey, load_key
from gitops_edge.adapters.registry.signature_formats import (
    COSIGN_SIG_ARTIFACT,
    SIG_ANNOTATION,
    SIMPLE_SIGNING_TYPE,
    Rejected,
    b64decode,
    is_bundle_type,
    legacy_tag,
    referrers_tag,
)
from gitops_edge.adapters.registry.trust_root import check_clock, root_document
from gitops_edge.adapters.registry.verify_one import verify_bundle, verify_legacy
from gitops_edge.errors import ImageNotFoundError, RegistryProtocolError, TrustError
from gitops_edge.model.trust import Evidence, RegistriesConfig, TrustRule

MAX_CANDIDATES = 32  # signatures per image worth looking at; more is noise or an attack
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LEGACY = "cosign signature"
_BUNDLE = "sigstore bundle"


@dataclass
class _Context:
    """One verification: the image, the rule, and what was found wrong so far."""

    repository: str
    digest: str
    tag: str | None  # the tag the image was referenced by (for an exact signed identity)
    rule: TrustRule
    keys: tuple[PublicKey, ...]
    clock_problem: TrustError | None
    findings: list[tuple[str, str]] = field(default_factory=list)


class SignatureVerifier:
    """Resolves references and verifies ``repository@digest`` against one trust rule."""

    def __init__(self, registries: RegistriesConfig | None = None, *, client: RegistryClient | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._client = client or RegistryClient(registries)
        self._clock = clock or (lambda: datetime.now(UTC))

    def resolve_digest(self, ref: str) -> str:
        return self._client.resolve(ref)

    def verify(self, repository: str, digest: str, rule: TrustRule, *, tag: str | None = None) -> tuple[Evidence, ...]:
        image = f"{repository}@{digest[:19]}…"
        if not _DIGEST.fullmatch(digest):
            raise TrustError(f"{repository}@{digest}: not a sha256 digest")
        if not rule.keys and not rule.keyless:
            raise TrustError(f"{image}: trust rule {rule.match!r} names no keys and no keyless identities")
        try:
            keys = tuple(load_key(path) for path in rule.keys)
        except TrustError as exc:
            raise TrustError(f"{image}: {exc.message}") from None
        ctx = _Context(repository, digest, tag, rule, keys, self._clock_problem(rule))
        evidence = self._legacy(ctx)
        evidence += self._referrers(ctx)
        if evidence:
            return tuple(evidence)
        if ctx.clock_problem is not None:  # say so, retryably, rather than "expired" or "unknown CA"
            raise TrustError(f"{image}: {ctx.clock_problem.message}", retry=ctx.clock_problem.retry)
        raise TrustError(f"{image}: no signature verifies with {_signers(rule)} ({_summary(ctx.findings)})")

    def _clock_problem(self, rule: TrustRule) -> TrustError | None:
        """Why the device clock cannot be used for certificate and root validity, if it cannot."""
        if not rule.keyless and rule.tlog != "required":
            return None  # plain key signatures involve no time
        try:
            check_clock(self._clock(), root_document(rule))
        except TrustError as exc:
            return exc if exc.retryable else None  # an unreadable root is reported by the checks themselves
        return None

    # -- cosign's sha256-<hex>.sig tag ----------------------------------

    def _legacy(self, ctx: _Context) -> list[Evidence]:
        tag = legacy_tag(ctx.digest)
        try:
            manifest = self._client.manifest(ctx.repository, tag).json()
        except ImageNotFoundError:
            return []
        except RegistryProtocolError as exc:
            ctx.findings.append((_LEGACY, f"unreadable {tag}: {exc.message}"))
            return []
        return self._sig_layers(ctx, manifest, tag)

    def _sig_layers(self, ctx: _Context, manifest: dict[str, object], where: str) -> list[Evidence]:
        """Every simple-signing layer of a cosign signature manifest (``.sig`` tag or OCI 1.1 referrer)."""
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            ctx.findings.append((_LEGACY, f"{where} has no layer list"))
            return []
        out = []
        for layer in layers[:MAX_CANDIDATES]:
            try:
                found = self._sig_layer(ctx, layer)
            except Rejected as exc:
                ctx.findings.append((_LEGACY, str(exc)))
                continue
            out.append(replace(found, detail=f"{where} layer {layer['digest']}"))
        return out

    def _sig_layer(self, ctx: _Context, layer: object) -> Evidence:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING_TYPE:
            raise Rejected("layer is not a simple-signing payload")
        annotations = layer.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        signature = b64decode(annotations.get(SIG_ANNOTATION), "signature annotation")
        payload = self._blob(ctx.repository, layer.get("digest"))
        return verify_legacy(annotations, payload, signature, ctx.repository, ctx.digest, ctx.rule, ctx.keys,
                             ctx.clock_problem, tag=ctx.tag)

    # -- OCI referrers: API and fallback tag ----------------------------

    def _referrers(self, ctx: _Context) -> list[Evidence]:
        descriptors: dict[str, dict[str, object]] = {}
        api = self._client.referrers(ctx.repository, ctx.digest)
        tag = referrers_tag(ctx.digest)
        try:
            fallback: dict[str, object] | None = self._client.manifest(ctx.repository, tag).json()
        except ImageNotFoundError:
            fallback = None
        except RegistryProtocolError as exc:
            ctx.findings.append((_BUNDLE, f"unreadable {tag}: {exc.message}"))
            fallback = None
        for index in (api, fallback):
            if index is None:
                continue
            manifests = index.get("manifests")
            if not isinstance(manifests, list):
                ctx.findings.append((_BUNDLE, "referrers index has no manifest list"))
                continue
            for desc in manifests[:MAX_CANDIDATES]:
                if isinstance(desc, dict) and isinstance(desc.get("digest"), str):
                    descriptors.setdefault(str(desc["digest"]), desc)
        out = []
        for desc in list(descriptors.values())[:MAX_CANDIDATES]:
            artifact = desc.get("artifactType")
            if artifact is not None and not is_bundle_type(artifact) and artifact != COSIGN_SIG_ARTIFACT:
                continue  # SBOMs and other referrers are not signatures; untyped ones are looked at
            try:
                out += self._referrer(ctx, desc.get("digest"))
            except Rejected as exc:
                ctx.findings.append((_BUNDLE, str(exc)))
        return out

    def _referrer(self, ctx: _Context, ref_digest: object) -> list[Evidence]:
        if not isinstance(ref_digest, str) or not _DIGEST.fullmatch(ref_digest):
            raise Rejected("referrer descriptor has no sha256 digest")
        try:
            doc = self._client.manifest(ctx.repository, ref_digest).json()
        except (ImageNotFoundError, RegistryProtocolError) as exc:
            raise Rejected(f"referrer {ref_digest[:19]}… unreadable: {exc.message}") from None
        config = doc.get("config")
        artifact = doc.get("artifactType") or (config.get("mediaType") if isinstance(config, dict) else None)
        if artifact != COSIGN_SIG_ARTIFACT and not is_bundle_type(artifact):
            return []
        subject = doc.get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != ctx.digest:
            raise Rejected("referrer is about another digest")
        if artifact == COSIGN_SIG_ARTIFACT:
            return self._sig_layers(ctx, doc, f"referrer {ref_digest[:19]}…")
        layers = doc.get("layers")
        layer = next((x for x in layers if isinstance(x, dict) and is_bundle_type(x.get("mediaType"))), None) \
            if isinstance(layers, list) else None
        if layer is None:
            raise Rejected("referrer has no bundle layer")
        data = self._blob(ctx.repository, layer.get("digest"))
        evidence = verify_bundle(data, ctx.digest, ctx.rule, ctx.keys, ctx.clock_problem)
        where = f"referrer {ref_digest}"
        return [replace(evidence, detail=f"{where}: {evidence.detail}" if evidence.detail else where)]

    def _blob(self, repository: str, digest: object) -> bytes:
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise Rejected("layer has no sha256 digest")
        try:
            return self._client.blob(repository, digest, MAX_BLOB_BYTES)
        except (ImageNotFoundError, RegistryProtocolError) as exc:
            raise Rejected(f"blob {digest[:19]}… unreadable: {exc.message}") from None


def _signers(rule: TrustRule) -> str:
    names = [str(p) for p in rule.keys]
    names += [f"{i.issuer}: {i.subject or i.subject_regex or '*'}" for i in rule.keyless]
    return ", ".join(names)


def _summary(findings: list[tuple[str, str]]) -> str:
    """``found 2 cosign signatures: signature does not verify; signed for another digest``."""
    if not findings:
        return "no signature found: no .sig tag, no sigstore bundle referrers"
    parts = []
    for kind in (_LEGACY, _BUNDLE):
        reasons = [reason for k, reason in findings if k == kind]
        if reasons:
            plural = "s" if len(reasons) > 1 else ""
            counted = [r if n == 1 else f"{r} (x{n})" for r, n in Counter(reasons).items()]
            parts.append(f"found {len(reasons)} {kind}{plural}: {'; '.join(counted)}")
    return "; ".join(parts)
