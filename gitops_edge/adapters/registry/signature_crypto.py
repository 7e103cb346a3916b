"""Public keys and ECDSA checks on ``cryptography``, imported only when a signature is checked.

The agent idles for hours between syncs; the crypto stack stays out of its
memory until a trust rule actually needs it (docs/benchmarks.md, "Memory").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_edge.errors import TrustError


@dataclass(frozen=True)
class PublicKey:
    path: Path
    key: Any  # cryptography EllipticCurvePublicKey


def load_key(path: Path) -> PublicKey:
    """An SPKI PEM ECDSA P-256 key (cosign's ``cosign.pub``); anything else is a refusal."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustError(f"cannot read public key {path}: {exc.strerror}") from None
    try:
        key = load_pem_public_key(data)
    except Exception:  # ValueError, UnsupportedAlgorithm, ...: all mean "not a usable key"
        raise TrustError(f"{path} is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise TrustError(f"{path}: only ECDSA P-256 public keys are supported")
    return PublicKey(path=path, key=key)


def ecdsa_verifies(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True only for a valid DER ECDSA/SHA-256 signature; every failure is False."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except Exception:  # InvalidSignature, or malformed DER raising something else: fail closed
        return False
    return True
