"""Keyless sigstore bundles (README.md, "Trust"): certificate identity + OIDC issuer.

The cryptography (Fulcio chain, SCT, Rekor inclusion, signature) is the
``sigstore`` package's; what it leaves to callers is done here, fail closed:

- binding the bundle to the image: a DSSE bundle's in-toto statement must
  name the digest as a subject (sigstore does not look) and carry cosign's
  signature predicate (the same rule as for key bundles: an attestation is
  not a signature); a message-signature bundle must have signed the manifest
  itself, so its message digest *is* the image digest;
- the trusted root's validity windows at the times sigstore verified (a TSA's
  and/or the log's; Rekor v2 entries have only the TSA's);
- ``subject_regex`` identities (sigstore's policies are exact-match only).

``sigstore`` is imported lazily: it costs ~26 MiB and 0.4 s, and devices
without keyless rules never need it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gitops_edge.adapters.registry.keyless_windows import check_windows, entry_log_id
from gitops_edge.adapters.registry.trust_root import load_trusted_root, one_line
from gitops_edge.errors import TrustError
from gitops_edge.model.trust import Evidence, KeylessIdentity, TrustRule

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

MAX_BUNDLE_BYTES = 4 * 1024 * 1024  # real bundles are a few KiB; provenance predicates a few hundred
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_OIDC_ISSUER_OID = "1.3.6.1.4.1.57264.1.1"  # the extension sigstore's OIDCIssuer policy reads
_OTHERNAME_OID = "1.3.6.1.4.1.57264.1.7"  # sigstore's "username" SAN


def verify_keyless_bundle(bundle: bytes, digest: str, rule: TrustRule) -> Evidence:
    """Verify a keyless sigstore bundle for the image ``digest`` against ``rule``.

    Returns what made it acceptable; raises ``TrustError`` (one line) otherwise.
    """
    if not _DIGEST.fullmatch(digest):
        raise TrustError(f"keyless bundle: not a sha256 image digest: {digest[:80]!r}")
    if not rule.keyless:
        raise TrustError(f"keyless bundle: rule {rule.match!r} trusts no keyless identity")
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise TrustError(f"keyless bundle: {len(bundle)} bytes, more than {MAX_BUNDLE_BYTES}")
    doc = _parse_json(bundle)
    is_dsse = isinstance(doc.get("dsseEnvelope"), dict)
    if not is_dsse and not isinstance(doc.get("messageSignature"), dict):
        raise TrustError("keyless bundle: neither a DSSE envelope nor a message signature")

    try:
        from sigstore.errors import Error as SigstoreError
        from sigstore.hashes import Hashed
        from sigstore.models import Bundle
        from sigstore.verify import Verifier
        from sigstore.verify.policy import AnyOf
        from sigstore_models.common.v1 import HashAlgorithm  # sigstore 4's own model package
    except ImportError as exc:  # a broken install must refuse, not crash the sync
        raise TrustError(f"keyless bundle: the sigstore package is unavailable ({exc})") from None

    try:
        root, root_doc = load_trusted_root(rule)
    except TrustError as exc:
        raise TrustError(f"keyless bundle: {exc.message}") from None
    try:
        verifier = Verifier(trusted_root=root)
        parsed = Bundle.from_json(bundle)
        cert = parsed.signing_certificate
    except Exception as exc:  # InvalidBundle, but also pydantic/ValueError/KeyError on odd input
        raise TrustError(f"keyless bundle: malformed: {one_line(exc)}") from None
    issuer, sans = cert_identity(cert)
    signer = f"{issuer}: {', '.join(sans) or '(no SAN)'}"
    try:
        matching = [ident for ident in rule.keyless if identity_matches(ident, issuer, sans)]
    except re.error as exc:
        raise TrustError(f"keyless bundle: bad subject_regex in rule {rule.match!r}: {exc}") from None
    if not matching:
        raise TrustError(f"keyless bundle: certificate is for {signer}, no trusted identity of {rule.match!r}")

    policy = AnyOf([sigstore_policy(ident) for ident in matching])
    try:
        if is_dsse:
            payload_type, payload = verifier.verify_dsse(parsed, policy)
            detail = _check_statement(payload_type, payload, digest)
        else:
            hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.removeprefix("sha256:")))
            verifier.verify_artifact(hashed, parsed, policy)
            detail = "message signature over the image manifest"
        times = verified_times(verifier, parsed)
        check_windows(root_doc, parsed.signing_certificate, [t for _, t in times],
                      entry_log_id(doc["verificationMaterial"]["tlogEntries"][0]))
    except TrustError as exc:
        raise TrustError(f"keyless bundle from {signer}: {exc.message}") from None
    except SigstoreError as exc:
        raise TrustError(f"keyless bundle from {signer}: {one_line(exc)}") from None
    except Exception as exc:  # malformed material surfaces as ValueError, KeyError, cryptography errors...
        raise TrustError(f"keyless bundle from {signer}: unverifiable: {one_line(exc)}") from None
    return Evidence(format="bundle-keyless", signer=signer, detail=detail,
                    log=describe_entry(doc["verificationMaterial"]["tlogEntries"][0]),
                    time_source=describe_times(times))


def describe_entry(entry: dict[str, Any]) -> str:
    """``rekor v1 (hashedrekord 0.0.1) index 123, inclusion proof + SET``, for the evidence."""
    kind = entry.get("kindVersion") or {}
    version = "v2" if kind.get("version") == "0.0.2" else "v1"
    proofs = [name for key, name in (("inclusionProof", "inclusion proof"), ("inclusionPromise", "SET"))
              if entry.get(key)]
    return (f"rekor {version} ({kind.get('kind', '?')} {kind.get('version', '?')}) index "
            f"{entry.get('logIndex', '?')}, {' + '.join(proofs) or 'no proof'}")


def describe_times(times: list[tuple[str, datetime]]) -> str:
    return "; ".join(f"{source} {at:%Y-%m-%dT%H:%M:%SZ}" for source, at in times)


def _parse_json(bundle: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(bundle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrustError(f"keyless bundle: not JSON ({one_line(exc)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("verificationMaterial"), dict):
        raise TrustError("keyless bundle: not a sigstore bundle (no verificationMaterial)")
    if not isinstance(doc["verificationMaterial"].get("tlogEntries", []), list):
        raise TrustError("keyless bundle: malformed tlogEntries")
    return doc


def cert_identity(cert: Certificate) -> tuple[str, list[str]]:
    """The OIDC issuer and the SANs (email, URI, sigstore username) that sigstore's ``Identity`` compares."""
    from cryptography import x509

    issuer = "(no OIDC issuer)"
    try:
        issuer_ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(_OIDC_ISSUER_OID)).value
        if isinstance(issuer_ext, x509.UnrecognizedExtension):  # sigstore's OID: raw bytes of the issuer URL
            issuer = issuer_ext.value.decode()
    except Exception:
        pass
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:
        return issuer, []
    sans = [*san.get_values_for_type(x509.RFC822Name), *san.get_values_for_type(x509.UniformResourceIdentifier)]
    sans += [o.value.decode(errors="replace") for o in san.get_values_for_type(x509.OtherName)
             if o.type_id.dotted_string == _OTHERNAME_OID]
    return issuer, sans


def identity_matches(ident: KeylessIdentity, issuer: str, sans: list[str]) -> bool:
    """Cheap pre-check on the (not yet verified) certificate; sigstore's policy re-checks after verification."""
    if ident.subject is not None:
        return issuer == ident.issuer and ident.subject in sans
    if ident.subject_regex is not None:
        return issuer == ident.issuer and any(re.fullmatch(ident.subject_regex, s) for s in sans)
    return False  # an identity must name a subject; config parsing enforces it


def sigstore_policy(ident: KeylessIdentity) -> Any:
    """Exact subjects are sigstore's ``Identity``; for regexes sigstore checks the issuer, we the SAN."""
    from sigstore.verify.policy import Identity, OIDCIssuer

    if ident.subject is not None:
        return Identity(identity=ident.subject, issuer=ident.issuer)
    return _RegexIdentity(OIDCIssuer(ident.issuer), ident.subject_regex or "")


class _RegexIdentity:
    """A sigstore ``VerificationPolicy``: issuer checked by sigstore, SAN full-matched by a regex."""

    def __init__(self, issuer_policy: Any, pattern: str) -> None:
        self._issuer_policy = issuer_policy
        self._pattern = pattern

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError

        self._issuer_policy.verify(cert)
        _, sans = cert_identity(cert)
        if not any(re.fullmatch(self._pattern, s) for s in sans):
            raise VerificationError(f"no certificate SAN fully matches {self._pattern!r}: {sans}")


def _check_statement(payload_type: str, payload: bytes, digest: str) -> str:
    """The in-toto statement must name ``digest`` as a subject and be cosign's signature predicate.

    The same rule as for key bundles (``verify_one.check_predicate``): an
    attestation about the image (provenance, SBOM) is not a signature of it.
    """
    from gitops_edge.adapters.registry.signature_formats import COSIGN_SIGN_PREDICATE

    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise TrustError(f"keyless bundle: DSSE payload type {payload_type!r}, expected {INTOTO_PAYLOAD_TYPE}")
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
        hexes = {str(s["digest"]["sha256"]).lower() for s in subjects if "sha256" in s.get("digest", {})}
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
        raise TrustError("keyless bundle: DSSE payload is not an in-toto statement with subjects") from None
    if digest.removeprefix("sha256:") not in hexes:
        raise TrustError(f"keyless bundle: the statement's subjects do not include {digest}")
    predicate = statement.get("predicateType")
    if predicate != COSIGN_SIGN_PREDICATE:
        raise TrustError(f"keyless bundle: a {predicate or 'untyped'} attestation, not a signature")
    return f"in-toto statement, predicate {predicate}"


def verified_times(verifier: Any, bundle: Any) -> list[tuple[str, datetime]]:
    """The signing times sigstore verified for ``bundle``: its TSA timestamps and its log's integrated time.

    These are the times the sigstore client spec lets a verifier rely on (a
    Rekor v2 entry has none of its own: a TSA's is then the only one). sigstore
    does not return them from ``verify_*``; its ``_establish_time`` recomputes
    them (a private method: if a later sigstore drops it, this refuses).
    """
    results = verifier._establish_time(bundle)
    return [(_source_name(r.source), r.time) for r in results]


def _source_name(source: Any) -> str:
    name = str(getattr(source, "name", source)).upper()
    return "timestamp authority" if "TIMESTAMP" in name else "transparency log"


__all__ = ["verify_keyless_bundle"]
