"""Key types for key signatures: ECDSA P-256/P-384, RSA PKCS#1 v1.5 and PSS, Ed25519, from PEM files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gitops_edge.adapters.registry.signature_crypto import load_key, verifies
from gitops_edge.adapters.registry.signature_formats import Rejected
from gitops_edge.adapters.registry.verify_one import verify_legacy
from gitops_edge.errors import TrustError
from gitops_edge.model.trust import TrustRule

REPO = "127.0.0.1:5055/edge/app"
DIGEST = "sha256:" + "ab" * 32
PAYLOAD = json.dumps({"critical": {"identity": {"docker-reference": REPO},
                                   "image": {"docker-manifest-digest": DIGEST},
                                   "type": "cosign container image signature"}, "optional": None}).encode()


def pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


# (name, private key factory, signer)
SIGNERS: list[tuple[str, Any, Any]] = [
    ("ecdsa-p256", lambda: ec.generate_private_key(ec.SECP256R1()),
     lambda k, d: k.sign(d, ec.ECDSA(hashes.SHA256()))),
    ("ecdsa-p384", lambda: ec.generate_private_key(ec.SECP384R1()),
     lambda k, d: k.sign(d, ec.ECDSA(hashes.SHA256()))),  # cosign: SHA-256 for every file key
    ("ecdsa-p384-sha384", lambda: ec.generate_private_key(ec.SECP384R1()),
     lambda k, d: k.sign(d, ec.ECDSA(hashes.SHA384()))),  # sigstore's P-384 key details
    ("rsa-pkcs1", lambda: rsa.generate_private_key(65537, 2048),
     lambda k, d: k.sign(d, padding.PKCS1v15(), hashes.SHA256())),
    ("rsa-pss", lambda: rsa.generate_private_key(65537, 2048), lambda k, d: k.sign(d, pss(), hashes.SHA256())),
    ("ed25519", ed25519.Ed25519PrivateKey.generate, lambda k, d: k.sign(d)),
]


def write_public(path: Path, private: Any) -> Path:
    path.write_bytes(private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return path


@pytest.mark.parametrize("name, make, sign", SIGNERS, ids=[s[0] for s in SIGNERS])
def test_each_key_type_verifies_and_refuses_tampering(tmp_path: Path, name: str, make: Any, sign: Any) -> None:
    private = make()
    path = write_public(tmp_path / "k.pub", private)
    key = load_key(path)
    signature = sign(private, PAYLOAD)
    rule = TrustRule(match="*", keys=(path,))
    ev = verify_legacy({}, PAYLOAD, signature, REPO, DIGEST, rule, (key,))
    assert ev.format == "cosign-sig" and ev.signer == str(path)
    assert not verifies(key, signature, PAYLOAD + b" ")
    bad = bytearray(signature)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(Rejected, match="signature does not verify"):
        verify_legacy({}, PAYLOAD, bytes(bad), REPO, DIGEST, rule, (key,))
    stranger = write_public(tmp_path / "other.pub", make())
    with pytest.raises(Rejected, match="signature does not verify"):
        verify_legacy({}, PAYLOAD, signature, REPO, DIGEST, TrustRule(match="*", keys=(stranger,)),
                      (load_key(stranger),))


def test_unsupported_keys_are_refused_by_name(tmp_path: Path) -> None:
    small = write_public(tmp_path / "small.pub", rsa.generate_private_key(65537, 1024))
    with pytest.raises(TrustError, match="RSA key of 1024 bits"):
        load_key(small)
    curve = write_public(tmp_path / "p521.pub", ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(TrustError, match="unsupported key type"):
        load_key(curve)
    legacy = write_public(tmp_path / "dsa.pub", dsa.generate_private_key(2048))
    with pytest.raises(TrustError, match="unsupported key type"):
        load_key(legacy)
    (tmp_path / "junk.pub").write_text("not a key")
    with pytest.raises(TrustError, match="is not a PEM public key"):
        load_key(tmp_path / "junk.pub")
