"""Cosign's Rekor "bundle" annotation checked against a trusted root: the SET and the entry.

A signed entry timestamp is Rekor's promise that it logged ``body`` at
``integratedTime``; verified with a log key from the trusted root, it makes
that time a verified one. The entry must then be about this very signature
(payload digest, signature bytes and signer key), or a valid entry for
something else could lend its time. Used for cosign v2's keyless ``.sig``
signatures and for key signatures under ``tlog: required``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gitops_edge.adapters.registry.signature_formats import Rejected, RekorBundle, check_hashedrekord
from gitops_edge.adapters.registry.trust_root import one_line


def verify_set(root: Any, rekor: RekorBundle) -> datetime:
    """Verify the SET with the root's Rekor keys; returns the now verified integrated time."""
    from sigstore._internal.trust import KeyringPurpose
    from sigstore.errors import Error as SigstoreError

    try:
        keyring = root.rekor_keyring(KeyringPurpose.VERIFY)
        keyring.verify(key_id=rekor.log_id, signature=rekor.signed_entry_timestamp, data=rekor.signed_data())
    except SigstoreError as exc:
        raise Rejected(f"Rekor signed entry timestamp does not verify ({one_line(exc)})") from None
    except Exception as exc:  # malformed keys or signatures: fail closed with the reason
        raise Rejected(f"Rekor signed entry timestamp unverifiable ({type(exc).__name__})") from None
    return datetime.fromtimestamp(rekor.integrated_time, UTC)


def check_entry_signer(rekor: RekorBundle, payload: bytes, signature: bytes, signer_der: bytes, *,
                       certificate: bool) -> None:
    """The logged entry must record this payload, this signature and this signer.

    ``signer_der`` is the certificate's DER (keyless) or the key's SPKI DER.
    """
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
    from cryptography.x509 import load_pem_x509_certificate

    logged = check_hashedrekord(rekor.body, payload, signature)
    try:
        if certificate:
            logged_der = load_pem_x509_certificate(logged).public_bytes(Encoding.DER)
        else:
            logged_der = load_pem_public_key(logged).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except Exception:
        raise Rejected("Rekor entry's signer is not a PEM " + ("certificate" if certificate else "public key")) \
            from None
    if logged_der != signer_der:
        raise Rejected("Rekor entry was logged by another signer")


def describe(rekor: RekorBundle) -> tuple[str, str]:
    """(log, time source) for the evidence."""
    at = datetime.fromtimestamp(rekor.integrated_time, UTC)
    return (f"rekor v1 (hashedrekord 0.0.1) index {rekor.log_index}, SET",
            f"transparency log {at:%Y-%m-%dT%H:%M:%SZ}")
