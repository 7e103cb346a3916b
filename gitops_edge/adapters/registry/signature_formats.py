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
import hashlib
import json
import re
from dataclasses import dataclass

from gitops_edge.adapters.registry.names import canonical
from gitops_edge.core.image_ref import parse as parse_ref
from gitops_edge.model.trust import SignedIdentity

SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
CERT_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
REKOR_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"  # cosign's Rekor "bundle": the SET and the entry
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"  # --registry-referrers-mode=oci-1-1
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


def check_simple_signing(payload: bytes, repository: str, digest: str,
                         identity: SignedIdentity | None = None, tag: str | None = None) -> None:
    """The signed payload must name exactly this image: type, digest and (per ``identity``) reference."""
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
    ident = critical.get("identity")
    reference = ident.get("docker-reference") if isinstance(ident, dict) else None
    if not isinstance(reference, str) or not reference:
        raise Rejected("payload names no docker-reference")
    check_docker_reference(reference, repository, digest, identity or SignedIdentity(), tag)


def check_docker_reference(reference: str, repository: str, digest: str, identity: SignedIdentity,
                           tag: str | None = None) -> None:
    """Compare the signed ``docker-reference`` with the image, as containers/image does.

    Both sides are canonicalized first (``nginx`` is ``docker.io/library/nginx``;
    cosign writes ``index.docker.io/...``) and the signed side is split into
    repository, tag and digest: a tag is never part of the repository.
    """
    signed = parse_ref(reference)
    signed_repo = canonical(signed.repository)
    image_repo = canonical(repository)
    if identity.mode == "remap":
        prefix = identity.prefix.rstrip("/")
        if image_repo == prefix or image_repo.startswith(prefix + "/"):
            image_repo = canonical(identity.signed_prefix.rstrip("/") + image_repo[len(prefix):])
    if identity.mode == "exact":
        wanted = f"{image_repo}:{tag}" if tag else f"{image_repo}@{digest}"
        got = signed_repo + (f":{signed.tag}" if signed.tag else "") + (f"@{signed.digest}" if signed.digest else "")
        if got != wanted:
            raise Rejected(f"signed for {reference}, not exactly {wanted}")
        return
    if signed.digest is not None and signed.digest != digest:
        raise Rejected(f"signed reference {reference} names another digest")
    if signed_repo != image_repo:
        remapped = f" (compared as {image_repo})" if identity.mode == "remap" else ""
        raise Rejected(f"signed for another repository ({reference}){remapped}")


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


@dataclass(frozen=True)
class RekorBundle:
    """Cosign's ``dev.sigstore.cosign/bundle`` annotation: a Rekor v1 entry and its SET.

    The signed entry timestamp covers exactly ``body``, ``integratedTime``,
    ``logID`` and ``logIndex``, so once it verifies the time is a verified one.
    """

    signed_entry_timestamp: bytes
    body_b64: str
    body: bytes
    integrated_time: int
    log_index: int
    log_id: bytes  # the log's key id (sha256 of its public key)

    def signed_data(self) -> bytes:
        """What the SET signs: the four fields in canonical (RFC 8785) JSON.

        Keys sorted, no whitespace; the values are ASCII base64/hex and
        integers, for which ``json.dumps`` and RFC 8785 agree byte for byte.
        """
        return json.dumps({"body": self.body_b64, "integratedTime": self.integrated_time,
                           "logID": self.log_id.hex(), "logIndex": self.log_index},
                          sort_keys=True, separators=(",", ":")).encode()


def parse_rekor_bundle(raw: object) -> RekorBundle:
    if not isinstance(raw, str) or not raw:
        raise Rejected("no Rekor bundle annotation")
    doc = json_object(raw.encode(), "Rekor bundle annotation")
    payload = doc.get("Payload")
    if not isinstance(payload, dict):
        raise Rejected("Rekor bundle has no Payload")
    body_b64 = payload.get("body")
    body = b64decode(body_b64, "Rekor entry body")
    integrated, index, log_id = payload.get("integratedTime"), payload.get("logIndex"), payload.get("logID")
    if not isinstance(integrated, int) or isinstance(integrated, bool) or integrated <= 0:
        raise Rejected("Rekor bundle has no integrated time")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise Rejected("Rekor bundle has no log index")
    if not isinstance(log_id, str) or not re.fullmatch(r"[0-9a-f]{64}", log_id):
        raise Rejected("Rekor bundle has no log ID")
    assert isinstance(body_b64, str)
    return RekorBundle(signed_entry_timestamp=b64decode(doc.get("SignedEntryTimestamp"), "signed entry timestamp"),
                       body_b64=body_b64, body=body, integrated_time=integrated, log_index=index,
                       log_id=bytes.fromhex(log_id))


def check_hashedrekord(body: bytes, payload: bytes, signature: bytes) -> bytes:
    """The log entry must record this payload's digest and this signature; returns its public key PEM.

    The caller compares that key with the certificate or key that verified
    the signature: an entry for another artifact, signature or signer must
    not lend its timestamp.
    """
    entry = json_object(body, "Rekor entry body")
    if entry.get("kind") != "hashedrekord" or entry.get("apiVersion") != "0.0.1":
        raise Rejected(f"Rekor entry is {entry.get('kind')!r} {entry.get('apiVersion')!r}, not hashedrekord 0.0.1")
    spec = entry.get("spec")
    data = spec.get("data") if isinstance(spec, dict) else None
    hashed = data.get("hash") if isinstance(data, dict) else None
    sig = spec.get("signature") if isinstance(spec, dict) else None
    if not isinstance(hashed, dict) or not isinstance(sig, dict):
        raise Rejected("Rekor entry has no data hash or signature")
    if hashed.get("algorithm") != "sha256" or hashed.get("value") != hashlib.sha256(payload).hexdigest():
        raise Rejected("Rekor entry is for another payload")
    if b64decode(sig.get("content"), "Rekor entry signature") != signature:
        raise Rejected("Rekor entry is for another signature")
    key = sig.get("publicKey")
    return b64decode(key.get("content") if isinstance(key, dict) else None, "Rekor entry public key")
