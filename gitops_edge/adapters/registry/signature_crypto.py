"""Public keys and signature checks on ``cryptography``, imported only when a signature is checked.

The agent idles for hours between syncs; the crypto stack stays out of its
memory until a trust rule actually needs it (docs/benchmarks.md, "Memory").

Key types are the ones cosign and sigstore sign with: ECDSA P-256 / P-384
(SHA-256, cosign's default for every key loaded from a file, or the curve's
own hash, sigstore's key details), RSA >= 2048 bits (PKCS#1 v1.5 or PSS,
SHA-256) and Ed25519 (over the message itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_edge.errors import TrustError

MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class PublicKey:
    path: Path
    key: Any  # a cryptography public key of one of the supported types
    kind: str  # ecdsa-p256 | ecdsa-p384 | rsa-<bits> | ed25519


def load_key(path: Path) -> PublicKey:
    """An SPKI PEM public key (cosign's ``cosign.pub``); an unsupported type is a refusal naming it."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustError(f"cannot read public key {path}: {exc.strerror}") from None
    try:
        key = load_pem_public_key(data)
    except Exception:  # ValueError, UnsupportedAlgorithm, ...: all mean "not a usable key"
        raise TrustError(f"{path} is not a PEM public key") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
        kind = f"ecdsa-p{key.curve.key_size}"
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise TrustError(f"{path}: RSA key of {key.key_size} bits, fewer than {MIN_RSA_BITS}")
        kind = f"rsa-{key.key_size}"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        kind = "ed25519"
    else:
        raise TrustError(f"{path}: unsupported key type (ECDSA P-256/P-384, RSA and Ed25519 are supported)")
    return PublicKey(path=path, key=key, kind=kind)


def verifies(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True only for a valid signature by ``key`` over ``data``; every failure is False."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

    attempts: list[tuple[Any, ...]]
    if isinstance(key.key, ec.EllipticCurvePublicKey):
        own = hashes.SHA384() if key.kind == "ecdsa-p384" else hashes.SHA256()
        attempts = [(ec.ECDSA(hashes.SHA256()),)] + ([(ec.ECDSA(own),)] if key.kind == "ecdsa-p384" else [])
    elif isinstance(key.key, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        attempts = [(padding.PKCS1v15(), hashes.SHA256()), (pss, hashes.SHA256())]
    elif isinstance(key.key, ed25519.Ed25519PublicKey):
        attempts = [()]
    else:
        return False
    for args in attempts:
        try:
            key.key.verify(signature, data, *args)
        except Exception:  # InvalidSignature, or malformed DER raising something else: fail closed
            continue
        return True
    return False

