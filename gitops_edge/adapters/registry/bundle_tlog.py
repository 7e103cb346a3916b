"""``tlog: required`` for key-signed DSSE bundles: the bundle's Rekor entry, checked against the trusted root.

sigstore-python verifies bundles only with a certificate, so for a key the
entry is checked from sigstore's parts: the inclusion proof and its signed
checkpoint (``TransparencyLogEntry._verify``) when the bundle has them, else
the signed entry timestamp alone (v0.1 bundles, like npm's). Then the entry
must be about this envelope: its payload hash (Rekor v2: the hash of its
PAE), its signature, this key. A Rekor v2 entry has no time of its own; a
key signature needs none, so the evidence names no time then.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from gitops_edge.adapters.registry.rekor_set import verify_set
from gitops_edge.adapters.registry.signature_crypto import PublicKey
from gitops_edge.adapters.registry.signature_formats import (
    Envelope,
    Rejected,
    RekorBundle,
    b64decode,
    json_object,
    pae,
    parse_envelope,
)
from gitops_edge.adapters.registry.trust_root import load_trusted_root, one_line
from gitops_edge.errors import TrustError
from gitops_edge.model.trust import TrustRule


def verify_key_bundle_tlog(data: bytes, key: PublicKey, rule: TrustRule) -> tuple[str, str]:
    """Verify the log entry of a key-signed DSSE bundle; returns (log, time source) for the evidence."""
    doc = json_object(data, "bundle")
    material = doc.get("verificationMaterial")
    entries = material.get("tlogEntries") if isinstance(material, dict) else None
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        raise Rejected("tlog is required, but the bundle has no (single) transparency log entry")
    entry: dict[str, Any] = entries[0]
    try:
        root, _ = load_trusted_root(rule)
    except TrustError as exc:
        raise Rejected(exc.message) from None
    proof = entry.get("inclusionProof")
    proofs = []
    if isinstance(proof, dict) and proof.get("checkpoint"):
        _verify_inclusion(root, entry)
        proofs.append("inclusion proof")
    signed_at = None
    if entry.get("inclusionPromise") and entry.get("integratedTime"):
        signed_at = verify_set(root, _as_rekor_bundle(entry))
        proofs.append("SET")
    if not proofs:
        raise Rejected("tlog is required, but the log entry has neither an inclusion proof nor a SET")
    _check_body(entry, doc.get("dsseEnvelope"), key)
    kind = entry.get("kindVersion") or {}
    log = (f"rekor ({kind.get('kind', '?')} {kind.get('version', '?')}) index {entry.get('logIndex', '?')}, "
           f"{' + '.join(proofs)}")
    return log, (f"transparency log {signed_at:%Y-%m-%dT%H:%M:%SZ}" if signed_at else "")


def _verify_inclusion(root: Any, entry: dict[str, Any]) -> None:
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.models import TransparencyLogEntry
    from sigstore_models.rekor.v1 import TransparencyLogEntry as InnerEntry

    try:
        parsed = TransparencyLogEntry(InnerEntry.from_dict(entry))
        parsed._verify(root.rekor_keyring(KeyringPurpose.VERIFY))
    except Exception as exc:  # VerificationError, InvalidBundle, pydantic errors on odd input
        raise Rejected(f"log entry does not verify against the trusted root ({one_line(exc)})") from None


def _as_rekor_bundle(entry: dict[str, Any]) -> RekorBundle:
    body_b64 = entry.get("canonicalizedBody")
    promise = entry.get("inclusionPromise") or {}
    try:
        return RekorBundle(
            signed_entry_timestamp=b64decode(promise.get("signedEntryTimestamp"), "signed entry timestamp"),
            body_b64=str(body_b64), body=b64decode(body_b64, "log entry body"),
            integrated_time=int(entry["integratedTime"]), log_index=int(entry["logIndex"]),
            log_id=b64decode((entry.get("logId") or {}).get("keyId"), "log ID"))
    except (KeyError, TypeError, ValueError):
        raise Rejected("log entry has no integrated time or log index") from None


def _check_body(entry: dict[str, Any], raw_envelope: object, key: PublicKey) -> None:
    """The entry (dsse 0.0.1 or intoto 0.0.2) records this payload, one of its signatures, and this key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

    envelope = parse_envelope(raw_envelope)
    body = json_object(b64decode(entry.get("canonicalizedBody"), "log entry body"), "log entry body")
    kind = (body.get("kind"), body.get("apiVersion"))
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    if kind == ("dsse", "0.0.1"):
        payload_hash = spec.get("payloadHash")
        logged = [(b64decode(s.get("signature"), "logged signature"), b64decode(s.get("verifier"), "logged key"))
                  for s in spec.get("signatures") or [] if isinstance(s, dict)]
    elif kind == ("intoto", "0.0.2"):
        content = spec.get("content") if isinstance(spec.get("content"), dict) else {}
        assert isinstance(content, dict)
        payload_hash = content.get("payloadHash")
        logged_env = content.get("envelope") if isinstance(content.get("envelope"), dict) else {}
        assert isinstance(logged_env, dict)
        logged = [(base64.b64decode(b64decode(s.get("sig"), "logged signature")),
                   b64decode(s.get("publicKey"), "logged key"))
                  for s in logged_env.get("signatures") or [] if isinstance(s, dict)]
    elif kind == ("hashedrekord", "0.0.2"):  # Rekor v2 logs a DSSE envelope as the hash of its PAE
        _check_v2_body(spec, envelope, key)
        return
    else:
        raise Rejected(f"log entry is {kind[0]!r} {kind[1]!r}, not a DSSE (dsse 0.0.1 / intoto 0.0.2 / "
                       "hashedrekord 0.0.2) entry")
    if not isinstance(payload_hash, dict) or payload_hash.get("algorithm") != "sha256" \
            or payload_hash.get("value") != hashlib.sha256(envelope.payload).hexdigest():
        raise Rejected("log entry is for another payload")
    ours = key.key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    for signature, pem in logged:
        try:
            logged_key = load_pem_public_key(pem).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        except Exception:
            continue
        if signature in envelope.signatures and logged_key == ours:
            return
    raise Rejected("log entry records another signature or signer")




def _check_v2_body(spec: dict[str, Any], envelope: Envelope, key: PublicKey) -> None:
    """hashedrekord 0.0.2: digest = SHA-256 of the envelope's PAE, its signature, and this key (SPKI DER)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    inner = spec.get("hashedRekordV002")
    data = inner.get("data") if isinstance(inner, dict) else None
    sig = inner.get("signature") if isinstance(inner, dict) else None
    if not isinstance(data, dict) or not isinstance(sig, dict):
        raise Rejected("Rekor v2 entry has no data or signature")
    signed = pae(envelope.payload_type, envelope.payload)
    if data.get("algorithm") != "SHA2_256" or b64decode(data.get("digest"), "logged digest") \
            != hashlib.sha256(signed).digest():
        raise Rejected("log entry is for another payload")
    verifier = sig.get("verifier") if isinstance(sig.get("verifier"), dict) else {}
    assert isinstance(verifier, dict)
    public = verifier.get("publicKey") if isinstance(verifier.get("publicKey"), dict) else {}
    assert isinstance(public, dict)
    logged_key = b64decode(public.get("rawBytes"), "logged key") if public else b""
    ours = key.key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if b64decode(sig.get("content"), "logged signature") not in envelope.signatures or logged_key != ours:
        raise Rejected("log entry records another signature or signer")
