"""Verify one signature found in a registry: a ``.sig`` layer or a sigstore bundle.

Pure over bytes the caller fetched (so the corpus tests need no registry).
Each function returns the ``Evidence`` of an acceptable signature or raises
``Rejected`` with the reason; ``clock_problem`` (the device clock is not set)
rejects every candidate whose checks depend on time.

One predicate rule for key and keyless bundles: a bundle signs an image only
when its in-toto statement names the image digest as a subject *and* its
predicate type is cosign's signature predicate
(``https://sigstore.dev/cosign/sign/v1``). Attestations (SLSA provenance,
SBOMs, ...) attached to the same image are not signatures, whoever signed
them. A keyless message-signature bundle over the manifest itself carries
no predicate and signs exactly the digest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitops_edge.adapters.registry.signature_crypto import PublicKey, verifies
from gitops_edge.adapters.registry.signature_formats import (
    CERT_ANNOTATION,
    COSIGN_SIGN_PREDICATE,
    REKOR_BUNDLE_ANNOTATION,
    Rejected,
    check_simple_signing,
    check_statement,
    pae,
    parse_bundle,
    parse_envelope,
    parse_rekor_bundle,
)
from gitops_edge.errors import TrustError
from gitops_edge.model.trust import Evidence, TrustRule


def verify_legacy(annotations: dict[str, Any], payload: bytes, signature: bytes, repository: str, digest: str,
                  rule: TrustRule, keys: tuple[PublicKey, ...], clock_problem: TrustError | None = None, *,
                  tag: str | None = None) -> Evidence:
    """One cosign simple-signing layer (key or keyless) for ``repository@digest``."""
    if CERT_ANNOTATION in annotations:
        if not rule.keyless:
            raise Rejected("keyless signature, but the rule names no keyless identities")
        if clock_problem is not None:
            raise Rejected(clock_problem.message)
        from gitops_edge.adapters.registry.keyless_legacy import verify_legacy_keyless

        try:
            evidence = verify_legacy_keyless(annotations, payload, signature, rule)
        except Rejected:
            raise
        except Exception as exc:  # a bug in the checks must not turn into an allow, nor crash the sync
            raise Rejected(f"keyless verification failed ({type(exc).__name__})") from None
        check_simple_signing(payload, repository, digest, rule.signed_identity, tag)
        return evidence
    if not keys:
        raise Rejected("key signature, but the rule names no keys")
    key = next((k for k in keys if verifies(k, signature, payload)), None)
    if key is None:
        raise Rejected("signature does not verify")
    check_simple_signing(payload, repository, digest, rule.signed_identity, tag)
    log = time_source = ""
    if rule.tlog == "required":
        if clock_problem is not None:
            raise Rejected(clock_problem.message)
        if REKOR_BUNDLE_ANNOTATION not in annotations:
            raise Rejected("tlog is required, but the signature has no Rekor bundle")
        raw = annotations[REKOR_BUNDLE_ANNOTATION]
        log, time_source = _guarded(lambda: _key_tlog(raw, payload, signature, key, rule))
    return Evidence(format="cosign-sig", signer=str(key.path), log=log, time_source=time_source)


def _key_tlog(raw: object, payload: bytes, signature: bytes, key: PublicKey, rule: TrustRule) -> tuple[str, str]:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from gitops_edge.adapters.registry.rekor_set import check_entry_signer, describe, verify_set
    from gitops_edge.adapters.registry.trust_root import load_trusted_root

    rekor = parse_rekor_bundle(raw)
    try:
        root, _ = load_trusted_root(rule)
    except TrustError as exc:
        raise Rejected(exc.message) from None
    verify_set(root, rekor)
    check_entry_signer(rekor, payload, signature,
                       key.key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo), certificate=False)
    return describe(rekor)


def verify_bundle(data: bytes, digest: str, rule: TrustRule, keys: tuple[PublicKey, ...],
                  clock_problem: TrustError | None = None) -> Evidence:
    """One sigstore bundle (key or keyless) for the image ``digest``."""
    bundle = parse_bundle(data)
    if bundle.keyless:
        if not rule.keyless:
            raise Rejected("keyless bundle, but the rule names no keyless identities")
        if clock_problem is not None:
            raise Rejected(clock_problem.message)
        return _keyless(data, digest, rule)
    if not keys:
        raise Rejected("key-based bundle, but the rule names no keys")
    if bundle.envelope is None:
        raise Rejected("message-signature bundle (only DSSE bundles sign images)")
    envelope = parse_envelope(bundle.envelope)
    signed = pae(envelope.payload_type, envelope.payload)
    key = next((k for k in keys if any(verifies(k, sig, signed) for sig in envelope.signatures)), None)
    if key is None:
        raise Rejected("signature does not verify")
    predicate = check_statement(envelope, digest)
    check_predicate(predicate)
    log = time_source = ""
    if rule.tlog == "required":
        if clock_problem is not None:
            raise Rejected(clock_problem.message)
        from gitops_edge.adapters.registry.bundle_tlog import verify_key_bundle_tlog

        log, time_source = _guarded(lambda: verify_key_bundle_tlog(data, key, rule))
    return Evidence(format="bundle-key", signer=str(key.path), detail=f"in-toto statement, predicate {predicate}",
                    log=log, time_source=time_source)


def _guarded(check: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """Run a log check; anything but a reasoned refusal (a bug, odd input) refuses too, never allows."""
    try:
        return check()
    except Rejected:
        raise
    except Exception as exc:
        raise Rejected(f"transparency log check failed ({type(exc).__name__})") from None


def check_predicate(predicate: str) -> None:
    """The one predicate rule (module docstring), for key and keyless bundles alike."""
    if predicate != COSIGN_SIGN_PREDICATE:
        raise Rejected(f"a {predicate or 'untyped'} attestation, not a signature")


def _keyless(data: bytes, digest: str, rule: TrustRule) -> Evidence:
    """Hand a certificate-bearing bundle to the keyless verifier (sigstore, imported lazily)."""
    try:
        from gitops_edge.adapters.registry.keyless import verify_keyless_bundle
    except ImportError:
        raise Rejected("keyless bundle, but no keyless verifier is installed") from None
    try:
        return verify_keyless_bundle(data, digest, rule)
    except TrustError as exc:
        raise Rejected(exc.message) from None
    except Exception as exc:  # the verifier must not turn a bug into an allow
        raise Rejected(f"keyless verification failed ({type(exc).__name__})") from None
