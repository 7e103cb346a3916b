"""A test signer that writes what cosign writes, without cosign (not installable here).

Keys are ECDSA P-256 (public half as SPKI PEM, like ``cosign.pub``).
Legacy signatures: a simple-signing payload blob, signed, attached as the
only layer of an OCI manifest under tag ``sha256-<hex>.sig`` with the
signature in the ``dev.cosignproject.cosign/signature`` annotation.
Bundles: a sigstore bundle v0.3 (public-key hint, DSSE envelope over an
in-toto statement) pushed as an OCI referrer manifest with ``subject`` and
listed in the ``sha256-<hex>`` fallback tag index, as cosign does on a
registry without the referrers API. Knobs let tests break exactly one thing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gitops_edge.adapters.registry.client import OCI_INDEX, OCI_MANIFEST, RegistryClient
from gitops_edge.adapters.registry.names import split_repository
from gitops_edge.adapters.registry.signature_formats import (
    BUNDLE_V03,
    COSIGN_PAYLOAD_TYPE,
    COSIGN_SIGN_PREDICATE,
    IN_TOTO_PAYLOAD_TYPE,
    OCI_EMPTY,
    SIG_ANNOTATION,
    SIMPLE_SIGNING_TYPE,
    legacy_tag,
    pae,
    referrers_tag,
)
from gitops_edge.errors import ImageNotFoundError

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
EPOCH = "0001-01-01T00:00:00Z"  # cosign's signature images carry go-containerregistry's zero time


@dataclass(frozen=True)
class KeyPair:
    private: ec.EllipticCurvePrivateKey
    public_path: Path

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data, ec.ECDSA(hashes.SHA256()))

    def public_der(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)


def generate_key(directory: Path, name: str = "cosign") -> KeyPair:
    """A fresh P-256 key; the public half is written to ``<directory>/<name>.pub``."""
    private = ec.generate_private_key(ec.SECP256R1())
    path = directory / f"{name}.pub"
    path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyPair(private=private, public_path=path)


def cosign_reference(repository: str) -> str:
    """The docker-reference cosign writes: go-containerregistry's full repository name."""
    name = split_repository(repository)
    host = "index.docker.io" if name.host == "registry-1.docker.io" else name.host
    return f"{host}/{name.path}"


def simple_signing_payload(repository: str, digest: str) -> bytes:
    doc = {
        "critical": {
            "identity": {"docker-reference": cosign_reference(repository)},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_PAYLOAD_TYPE,
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _descriptor(media_type: str, data: bytes, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data),
            **extra}


def _canon(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def push_legacy_signature(client: RegistryClient, repository: str, digest: str, key: KeyPair, *,
                          payload: bytes | None = None, pushed_payload: bytes | None = None,
                          attach_to: str | None = None) -> str:
    """Sign ``payload`` (default: cosign's payload for ``repository@digest``) and attach it.

    ``pushed_payload`` replaces the payload bytes after signing (tampering);
    ``attach_to`` puts the signature under another digest's ``.sig`` tag.
    Returns the signature manifest's digest.
    """
    payload = payload if payload is not None else simple_signing_payload(repository, digest)
    signature = base64.b64encode(key.sign(payload)).decode()
    blob = pushed_payload if pushed_payload is not None else payload
    client.push_blob(repository, blob)
    layer = _descriptor(SIMPLE_SIGNING_TYPE, blob, annotations={SIG_ANNOTATION: signature})
    config = _canon({"architecture": "", "created": EPOCH, "history": [{"created": EPOCH}], "os": "",
                     "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}, "config": {}})
    client.push_blob(repository, config)
    manifest = _canon({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _descriptor(OCI_CONFIG, config),
                       "layers": [layer]})
    return client.push_manifest(repository, legacy_tag(attach_to or digest), manifest, OCI_MANIFEST)


def in_toto_statement(repository: str, digest: str, predicate_type: str = COSIGN_SIGN_PREDICATE) -> bytes:
    algorithm, _, hex_digest = digest.partition(":")
    return _canon({"_type": "https://in-toto.io/Statement/v1",
                   "subject": [{"name": cosign_reference(repository), "digest": {algorithm: hex_digest}}],
                   "predicateType": predicate_type, "predicate": {}})


def dsse_bundle(key: KeyPair, statement: bytes, *, pushed_statement: bytes | None = None) -> bytes:
    """A key-based sigstore bundle v0.3; ``pushed_statement`` swaps the payload after signing."""
    signature = key.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement))
    hint = base64.b64encode(hashlib.sha256(key.public_der()).digest()).decode()
    body = pushed_statement if pushed_statement is not None else statement
    return _canon({
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(body).decode(), "payloadType": IN_TOTO_PAYLOAD_TYPE,
                         "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]},
    })


def push_bundle(client: RegistryClient, repository: str, digest: str, bundle: bytes) -> str:
    """Attach ``bundle`` as a referrer of ``digest`` and list it in the fallback tag index."""
    subject = client.manifest(repository, digest)
    empty = b"{}"
    client.push_blob(repository, empty)
    client.push_blob(repository, bundle)
    annotations = {"dev.sigstore.bundle.content": "dsse-envelope",
                   "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE}
    manifest = _canon({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_V03,
        "config": _descriptor(OCI_EMPTY, empty), "layers": [_descriptor(BUNDLE_V03, bundle)],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.body)},
        "annotations": annotations,
    })
    ref_digest = client.push_manifest(repository, "sha256:" + hashlib.sha256(manifest).hexdigest(), manifest,
                                      OCI_MANIFEST)
    tag = referrers_tag(digest)
    try:
        entries = list(client.manifest(repository, tag).json().get("manifests") or [])  # type: ignore[arg-type]
    except ImageNotFoundError:  # the first referrer
        entries = []
    entries.append(_descriptor(OCI_MANIFEST, manifest, artifactType=BUNDLE_V03, annotations=annotations))
    index = _canon({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    client.push_manifest(repository, tag, index, OCI_INDEX)
    return ref_digest
