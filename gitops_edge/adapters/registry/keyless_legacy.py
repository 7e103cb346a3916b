"""Cosign v2's default keyless format: a ``.sig`` layer carrying its certificate and Rekor bundle.

``cosign sign`` (without ``--new-bundle-format``) signs the simple-signing
payload with an ephemeral key, and records in the layer's annotations the
Fulcio certificate, its chain, and Rekor's answer (entry + signed entry
timestamp). There is no sigstore bundle, so sigstore-python's ``Verifier``
cannot take it (it requires an inclusion proof, which this format never
had); the same checks are made here from its parts, in its order:

1. the SET verifies with a Rekor key of the trusted root: the integrated
   time becomes the verified signing time;
2. the ECDSA signature over the payload verifies with the certificate's key;
3. the log entry records this payload digest, signature and certificate;
4. the certificate was valid at the signing time and chains to a Fulcio CA
   of the trusted root at that time (the annotation's chain is never a
   trust anchor: only the root is);
5. its SCT verifies with a CT log key of the trusted root (sigstore's own
   ``verify_sct``);
6. code-signing usage; issuer (Fulcio's OID extension) and SAN match a rule
   identity (sigstore's policies, plus our regex);
7. the trusted root's validity windows hold at the signing time;
8. the payload names this image (digest and repository; the caller's).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from gitops_edge.adapters.registry.keyless import cert_identity, identity_matches, sigstore_policy
from gitops_edge.adapters.registry.keyless_windows import check_windows
from gitops_edge.adapters.registry.rekor_set import check_entry_signer, describe, verify_set
from gitops_edge.adapters.registry.signature_formats import (
    CERT_ANNOTATION,
    REKOR_BUNDLE_ANNOTATION,
    Rejected,
    parse_rekor_bundle,
)
from gitops_edge.adapters.registry.trust_root import load_trusted_root, one_line
from gitops_edge.errors import TrustError
from gitops_edge.model.trust import Evidence, TrustRule


def verify_legacy_keyless(annotations: dict[str, Any], payload: bytes, signature: bytes,
                          rule: TrustRule) -> Evidence:
    """Check one keyless ``.sig`` layer; returns the evidence (the signer is ``issuer: SANs``).

    The payload's image binding (digest, repository) is the caller's, as for
    key signatures. Raises ``Rejected`` with the reason.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if not rule.keyless:
        raise Rejected("keyless signature, but the rule names no keyless identities")
    try:
        cert = x509.load_pem_x509_certificate(str(annotations.get(CERT_ANNOTATION, "")).encode())
    except ValueError:
        raise Rejected("certificate annotation is not a PEM certificate") from None
    if REKOR_BUNDLE_ANNOTATION not in annotations:
        raise Rejected("keyless signature without a Rekor bundle: no verified signing time")
    rekor = parse_rekor_bundle(annotations[REKOR_BUNDLE_ANNOTATION])
    issuer, sans = cert_identity(cert)
    signer = f"{issuer}: {', '.join(sans) or '(no SAN)'}"
    try:
        matching = [ident for ident in rule.keyless if identity_matches(ident, issuer, sans)]
    except re.error as exc:
        raise Rejected(f"bad subject_regex in rule {rule.match!r}: {exc}") from None
    if not matching:
        raise Rejected(f"certificate is for {signer}, no trusted identity of {rule.match!r}")
    try:
        root, root_doc = load_trusted_root(rule)
    except TrustError as exc:
        raise Rejected(exc.message) from None

    signed_at = verify_set(root, rekor)
    if not _ecdsa_verifies(cert.public_key(), signature, payload):
        raise Rejected(f"signature does not verify with the certificate of {signer}")
    check_entry_signer(rekor, payload, signature, cert.public_bytes(Encoding.DER), certificate=True)
    if not cert.not_valid_before_utc <= signed_at <= cert.not_valid_after_utc:
        raise Rejected(f"certificate of {signer} was not valid at the logged time {signed_at:%Y-%m-%dT%H:%M:%SZ}")
    chain = _verify_chain(root, cert, signed_at, signer)
    _verify_sct_and_usage(root, cert, chain, matching, signer)
    try:
        check_windows(root_doc, cert, [signed_at], rekor.log_id)
    except TrustError as exc:
        raise Rejected(exc.message) from None
    log, time_source = describe(rekor)
    return Evidence(format="cosign-sig-keyless", signer=signer, log=log, time_source=time_source)


def _verify_chain(root: Any, cert: Any, at: datetime, signer: str) -> list[Any]:
    """Path-validate the leaf to the root's Fulcio certificates at the signing time (as sigstore does)."""
    from cryptography.x509 import ExtendedKeyUsage
    from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store

    try:
        ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(ExtendedKeyUsage, Criticality.NON_CRITICAL,
                                                                         None)
        ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(ExtendedKeyUsage, Criticality.NON_CRITICAL,
                                                                         None)
        verifier = (PolicyBuilder().store(Store(root.get_fulcio_certs())).time(at)
                    .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy).build_client_verifier())
        return list(verifier.verify(cert, []).chain[1:])
    except Exception as exc:  # VerificationError, unsupported names, no CA in the root
        raise Rejected(f"certificate of {signer} does not chain to the trusted root's Fulcio CA at "
                       f"{at:%Y-%m-%dT%H:%M:%SZ}: {one_line(exc)}") from None


def _verify_sct_and_usage(root: Any, cert: Any, chain: list[Any], matching: list[Any], signer: str) -> None:
    from cryptography.x509 import ExtendedKeyUsage, KeyUsage
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from sigstore._internal.sct import verify_sct
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.verify.policy import AnyOf

    try:
        verify_sct(cert, chain, root.ct_keyring(KeyringPurpose.VERIFY))
    except Exception as exc:
        raise Rejected(f"certificate of {signer}: SCT does not verify ({one_line(exc)})") from None
    try:
        usage = cert.extensions.get_extension_for_class(KeyUsage).value
        extended = cert.extensions.get_extension_for_class(ExtendedKeyUsage).value
    except Exception:
        raise Rejected(f"certificate of {signer} has no key usage extensions") from None
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise Rejected(f"certificate of {signer} is not for code signing")
    try:
        AnyOf([sigstore_policy(ident) for ident in matching]).verify(cert)
    except Exception as exc:
        raise Rejected(f"certificate of {signer}: {one_line(exc)}") from None


def _ecdsa_verifies(key: Any, signature: bytes, data: bytes) -> bool:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True
