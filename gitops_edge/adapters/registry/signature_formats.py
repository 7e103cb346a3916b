"""The signature formats we accept, as pure checks over bytes and JSON.

Cosign's legacy scheme: a manifest under tag ``sha256-<hex>.sig`` whose
layers are simple-signing payloads, each signed (ECDSA, base64 in the
``dev.cosignproject.cosign/signature`` annotation). Sigstore bundles: an
OCI referrer (API or the ``sha256-<hex>`` fallback tag index) whose layer is
the bundle JSON; key-based ones carry a DSSE envelope over an in-toto
statement. Each check raises ``Rejected`` with a short reason; the verifier
turns the reasons into one refusal.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from gitops_edge.adapters.registry.names import canonical

SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
CERT_ANNOTATION = "dev.sigstore.cosign/certificate"
SIMPLE_SIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_PAYLOAD_TYPE = "cosign container image signature"
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"  # v0.3+json, +json;version=0.3, ...
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


class Rejected(Exception):
    """One candidate signature is not acceptable; ``str()`` is the reason."""


def legacy_tag(digest: str) -> str:
    """``sha256:abc`` → ``sha256-abc.sig``."""
    return digest.replace(":", "-", 1) + ".sig"


def referrers_tag(digest: str) -> str:
    """The OCI referrers fallback tag: ``sha256:abc`` → ``sha256-abc``."""
    return digest.replace(":", "-", 1)


def is_bundle_type(media_type: object) -> bool:
    return isinstance(media_type, str) and media_type.startswith(BUNDLE_MEDIA_PREFIX)


def b64decode(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise Rejected(f"{what} missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(f"{what} is not base64") from None


def json_object(data: bytes, what: str) -> dict[str, object]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(f"{what} is not JSON") from None
    if not isinstance(obj, dict):
        raise Rejected(f"{what} is not a JSON object")
    return obj


def check_simple_signing(payload: bytes, repository: str, digest: str) -> None:
    """The signed payload must name exactly this image: type, digest and repository.

    Cosign writes the repository without tag, in go-containerregistry's
    spelling (``index.docker.io/library/x`` for Hub); both sides are compared
    in ``canonical`` form.
    """
    doc = json_object(payload, "payload")
    critical = doc.get("critical")
    if not isinstance(critical, dict):
        raise Rejected("payload has no critical section")
    if critical.get("type") != COSIGN_PAYLOAD_TYPE:
        raise Rejected(f"payload type is {critical.get('type')!r}, not a cosign image signature")
    image = critical.get("image")
    signed_digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(signed_digest, str):
        raise Rejected("payload names no docker-manifest-digest")
    if signed_digest != digest:
        raise Rejected("signed for another digest")
    identity = critical.get("identity")
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    if not isinstance(reference, str) or not reference:
        raise Rejected("payload names no docker-reference")
    if canonical(reference) != canonical(repository):
        raise Rejected(f"signed for another repository ({reference})")


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the signature actually covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]


def parse_envelope(raw: object) -> Envelope:
    if not isinstance(raw, dict):
        raise Rejected("bundle has no DSSE envelope")
    payload_type = raw.get("payloadType")
    if not isinstance(payload_type, str):
        raise Rejected("DSSE envelope has no payloadType")
    payload = b64decode(raw.get("payload"), "DSSE payload")
    sigs = raw.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise Rejected("DSSE envelope has no signatures")
    decoded = tuple(b64decode(s.get("sig") if isinstance(s, dict) else None, "DSSE signature") for s in sigs[:16])
    return Envelope(payload_type=payload_type, payload=payload, signatures=decoded)


def check_statement(envelope: Envelope, digest: str) -> str:
    """The in-toto statement must list this digest as a subject; returns its predicate type."""
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise Rejected(f"DSSE payload type {envelope.payload_type!r} is not an in-toto statement")
    statement = json_object(envelope.payload, "in-toto statement")
    if statement.get("_type") not in IN_TOTO_STATEMENT_TYPES:
        raise Rejected(f"unknown statement type {statement.get('_type')!r}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        raise Rejected("statement has no subject list")
    algorithm, _, hex_digest = digest.partition(":")
    for subject in subjects:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digests, dict) and digests.get(algorithm) == hex_digest:
            predicate = statement.get("predicateType")
            return predicate if isinstance(predicate, str) else ""
    raise Rejected("statement is about another digest")


@dataclass(frozen=True)
class Bundle:
    keyless: bool  # carries a certificate: identity-based, not key-based
    envelope: object  # the raw dsseEnvelope (None for message signatures)
    has_message_signature: bool


def parse_bundle(data: bytes) -> Bundle:
    """Classify a sigstore bundle by its verification material."""
    doc = json_object(data, "bundle")
    if not is_bundle_type(doc.get("mediaType")):
        raise Rejected(f"bundle media type {doc.get('mediaType')!r} is not a sigstore bundle")
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        raise Rejected("bundle has no verificationMaterial")
    keyless = "certificate" in material or "x509CertificateChain" in material
    if not keyless and "publicKey" not in material:
        raise Rejected("bundle names neither a certificate nor a public key")
    return Bundle(keyless=keyless, envelope=doc.get("dsseEnvelope"),
                  has_message_signature="messageSignature" in doc)
