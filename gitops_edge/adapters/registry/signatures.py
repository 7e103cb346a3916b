"""``ImageVerifier``: find an image's signatures in its registry and check them.

Discovery looks in both places cosign and sigstore tools write: the legacy
``sha256-<hex>.sig`` tag and OCI referrers (the API, or its
``sha256-<hex>`` fallback tag). Key signatures are checked here, on
``cryptography``; keyless bundles go to ``gitops_edge.adapters.registry.keyless``.
Fail closed: every candidate that is malformed, unverifiable or about
something else becomes a reason, and no acceptable candidate is a
``TrustError`` listing those reasons.
"""

from __future__ import annotations

import re
from collections import Counter

from gitops_edge.adapters.registry.client import MAX_BLOB_BYTES, RegistryClient
from gitops_edge.adapters.registry.signature_crypto import PublicKey, ecdsa_verifies, load_key
from gitops_edge.adapters.registry.signature_formats import (
    CERT_ANNOTATION,
    COSIGN_SIGN_PREDICATE,
    SIG_ANNOTATION,
    SIMPLE_SIGNING_TYPE,
    Rejected,
    b64decode,
    check_simple_signing,
    check_statement,
    is_bundle_type,
    legacy_tag,
    pae,
    parse_bundle,
    parse_envelope,
    referrers_tag,
)
from gitops_edge.errors import ImageNotFoundError, RegistryProtocolError, TrustError
from gitops_edge.model.trust import Evidence, RegistriesConfig, TrustRule

MAX_CANDIDATES = 32  # signatures per image worth looking at; more is noise or an attack
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LEGACY = "cosign signature"
_BUNDLE = "sigstore bundle"


class SignatureVerifier:
    """Resolves references and verifies ``repository@digest`` against one trust rule."""

    def __init__(self, registries: RegistriesConfig | None = None, *, client: RegistryClient | None = None) -> None:
        self._client = client or RegistryClient(registries)

    def resolve_digest(self, ref: str) -> str:
        return self._client.resolve(ref)

    def verify(self, repository: str, digest: str, rule: TrustRule) -> tuple[Evidence, ...]:
        image = f"{repository}@{digest[:19]}…"
        if not _DIGEST.fullmatch(digest):
            raise TrustError(f"{repository}@{digest}: not a sha256 digest")
        if not rule.keys and not rule.keyless:
            raise TrustError(f"{image}: trust rule {rule.match!r} names no keys and no keyless identities")
        try:
            keys = tuple(load_key(path) for path in rule.keys)
        except TrustError as exc:
            raise TrustError(f"{image}: {exc.message}") from None
        findings: list[tuple[str, str]] = []
        evidence = self._legacy(repository, digest, keys, findings)
        evidence += self._bundles(repository, digest, rule, keys, findings)
        if evidence:
            return tuple(evidence)
        raise TrustError(f"{image}: no signature verifies with {_signers(rule)} ({_summary(findings)})")

    # -- cosign's sha256-<hex>.sig tag ----------------------------------

    def _legacy(self, repository: str, digest: str, keys: tuple[PublicKey, ...],
                findings: list[tuple[str, str]]) -> list[Evidence]:
        tag = legacy_tag(digest)
        try:
            layers = self._client.manifest(repository, tag).json().get("layers")
        except ImageNotFoundError:
            return []
        except RegistryProtocolError as exc:
            findings.append((_LEGACY, f"unreadable {tag}: {exc.message}"))
            return []
        if not isinstance(layers, list):
            findings.append((_LEGACY, f"{tag} has no layer list"))
            return []
        out = []
        for layer in layers[:MAX_CANDIDATES]:
            try:
                out.append(self._legacy_layer(repository, digest, tag, layer, keys))
            except Rejected as exc:
                findings.append((_LEGACY, str(exc)))
        return out

    def _legacy_layer(self, repository: str, digest: str, tag: str, layer: object,
                      keys: tuple[PublicKey, ...]) -> Evidence:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING_TYPE:
            raise Rejected("layer is not a simple-signing payload")
        annotations = layer.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        if not keys:
            if CERT_ANNOTATION in annotations:
                raise Rejected("keyless signature in the legacy format (only bundles are verified keyless)")
            raise Rejected("key signature, but the rule names no keys")
        signature = b64decode(annotations.get(SIG_ANNOTATION), "signature annotation")
        payload = self._blob(repository, layer.get("digest"))
        for key in keys:
            if ecdsa_verifies(key, signature, payload):
                check_simple_signing(payload, repository, digest)
                return Evidence(format="cosign-sig", signer=str(key.path), detail=f"{tag} layer {layer['digest']}")
        raise Rejected("signature does not verify")

    # -- sigstore bundles as OCI referrers ------------------------------

    def _bundles(self, repository: str, digest: str, rule: TrustRule, keys: tuple[PublicKey, ...],
                 findings: list[tuple[str, str]]) -> list[Evidence]:
        index = self._client.referrers(repository, digest)
        if index is None:  # no referrers API (distribution 2.x): the fallback tag
            tag = referrers_tag(digest)
            try:
                index = self._client.manifest(repository, tag).json()
            except ImageNotFoundError:
                return []
            except RegistryProtocolError as exc:
                findings.append((_BUNDLE, f"unreadable {tag}: {exc.message}"))
                return []
        manifests = index.get("manifests")
        if not isinstance(manifests, list):
            findings.append((_BUNDLE, "referrers index has no manifest list"))
            return []
        out = []
        for desc in manifests[:MAX_CANDIDATES]:
            if not isinstance(desc, dict):
                continue
            artifact = desc.get("artifactType")
            if artifact is not None and not is_bundle_type(artifact):
                continue  # SBOMs and other referrers are not signatures; untyped ones are looked at
            try:
                found = self._referrer(repository, digest, desc.get("digest"), rule, keys)
            except Rejected as exc:
                findings.append((_BUNDLE, str(exc)))
                continue
            if found is not None:
                out.append(found)
        return out

    def _referrer(self, repository: str, digest: str, ref_digest: object, rule: TrustRule,
                  keys: tuple[PublicKey, ...]) -> Evidence | None:
        if not isinstance(ref_digest, str) or not _DIGEST.fullmatch(ref_digest):
            raise Rejected("referrer descriptor has no sha256 digest")
        try:
            doc = self._client.manifest(repository, ref_digest).json()
        except (ImageNotFoundError, RegistryProtocolError) as exc:
            raise Rejected(f"referrer {ref_digest[:19]}… unreadable: {exc.message}") from None
        config = doc.get("config")
        artifact = doc.get("artifactType") or (config.get("mediaType") if isinstance(config, dict) else None)
        if not is_bundle_type(artifact):
            return None
        subject = doc.get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != digest:
            raise Rejected("referrer is about another digest")
        layers = doc.get("layers")
        layer = next((x for x in layers if isinstance(x, dict) and is_bundle_type(x.get("mediaType"))), None) \
            if isinstance(layers, list) else None
        if layer is None:
            raise Rejected("referrer has no bundle layer")
        data = self._blob(repository, layer.get("digest"))
        bundle = parse_bundle(data)
        if bundle.keyless:
            return _keyless(data, digest, rule)
        if not keys:
            raise Rejected("key-based bundle, but the rule names no keys")
        if bundle.envelope is None:
            raise Rejected("message-signature bundle (only DSSE bundles sign images)")
        envelope = parse_envelope(bundle.envelope)
        signed = pae(envelope.payload_type, envelope.payload)
        for key in keys:
            if any(ecdsa_verifies(key, sig, signed) for sig in envelope.signatures):
                predicate = check_statement(envelope, digest)
                if predicate != COSIGN_SIGN_PREDICATE:
                    raise Rejected(f"a {predicate or 'untyped'} attestation, not a signature")
                return Evidence(format="bundle-key", signer=str(key.path), detail=f"referrer {ref_digest}")
        raise Rejected("signature does not verify")

    def _blob(self, repository: str, digest: object) -> bytes:
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise Rejected("layer has no sha256 digest")
        try:
            return self._client.blob(repository, digest, MAX_BLOB_BYTES)
        except (ImageNotFoundError, RegistryProtocolError) as exc:
            raise Rejected(f"blob {digest[:19]}… unreadable: {exc.message}") from None


def _keyless(bundle: bytes, digest: str, rule: TrustRule) -> Evidence:
    """Hand a certificate-bearing bundle to the keyless verifier (sigstore, imported lazily)."""
    if not rule.keyless:
        raise Rejected("keyless bundle, but the rule names no keyless identities")
    try:
        from gitops_edge.adapters.registry.keyless import verify_keyless_bundle
    except ImportError:
        raise Rejected("keyless bundle, but no keyless verifier is installed") from None
    try:
        return verify_keyless_bundle(bundle, digest, rule)
    except TrustError as exc:
        raise Rejected(exc.message) from None
    except Exception as exc:  # the verifier must not turn a bug into an allow
        raise Rejected(f"keyless verification failed ({type(exc).__name__})") from None


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
