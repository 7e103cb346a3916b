"""Keyless sigstore bundles (README.md, "Trust"): certificate identity + OIDC issuer.

The cryptography (Fulcio chain, SCT, Rekor inclusion, signature) is the
``sigstore`` package's; what it leaves to callers is done here, fail closed:

- binding the bundle to the image: a DSSE bundle's in-toto statement must
  name the digest as a subject (sigstore does not look); a message-signature
  bundle must have signed the manifest itself, so its message digest *is* the
  image digest;
- ``subject_regex`` identities (sigstore's policies are exact-match only).

``sigstore`` is imported lazily: it costs ~26 MiB and 0.4 s, and devices
without keyless rules never need it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from gitops_edge.adapters.registry.keyless_windows import check_windows
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
        from sigstore.verify.policy import AnyOf
        from sigstore_models.common.v1 import HashAlgorithm  # sigstore 4's own model package
    except ImportError as exc:  # a broken install must refuse, not crash the sync
        raise TrustError(f"keyless bundle: the sigstore package is unavailable ({exc})") from None

    verifier, root_doc = _verifier(rule)
    try:
        parsed = Bundle.from_json(bundle)
        cert = parsed.signing_certificate
    except Exception as exc:  # InvalidBundle, but also pydantic/ValueError/KeyError on odd input
        raise TrustError(f"keyless bundle: malformed: {_one_line(exc)}") from None
    issuer, sans = _cert_identity(cert)
    signer = f"{issuer}: {', '.join(sans) or '(no SAN)'}"
    try:
        matching = [ident for ident in rule.keyless if _identity_matches(ident, issuer, sans)]
    except re.error as exc:
        raise TrustError(f"keyless bundle: bad subject_regex in rule {rule.match!r}: {exc}") from None
    if not matching:
        raise TrustError(f"keyless bundle: certificate is for {signer}, no trusted identity of {rule.match!r}")

    policy = AnyOf([_sigstore_policy(ident) for ident in matching])
    try:
        if is_dsse:
            payload_type, payload = verifier.verify_dsse(parsed, policy)
            detail = _check_statement(payload_type, payload, digest)
        else:
            hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.removeprefix("sha256:")))
            verifier.verify_artifact(hashed, parsed, policy)
            detail = "message signature over the image manifest"
        check_windows(root_doc, parsed.signing_certificate, doc["verificationMaterial"]["tlogEntries"][0])
    except TrustError:
        raise
    except SigstoreError as exc:
        raise TrustError(f"keyless bundle from {signer}: {_one_line(exc)}") from None
    except Exception as exc:  # malformed material surfaces as ValueError, KeyError, cryptography errors...
        raise TrustError(f"keyless bundle from {signer}: unverifiable: {_one_line(exc)}") from None
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    return Evidence(format="bundle-keyless", signer=signer,
                    detail=f"{detail}; rekor log index {entry.get('logIndex', '?')}")


def _parse_json(bundle: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(bundle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrustError(f"keyless bundle: not JSON ({_one_line(exc)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("verificationMaterial"), dict):
        raise TrustError("keyless bundle: not a sigstore bundle (no verificationMaterial)")
    if not isinstance(doc["verificationMaterial"].get("tlogEntries", []), list):
        raise TrustError("keyless bundle: malformed tlogEntries")
    return doc


def _verifier(rule: TrustRule) -> tuple[Any, dict[str, Any]]:
    """A verifier for the rule's trusted root (and that root as JSON, for the validity windows).

    Without a file: the sigstore package's cached production root, offline (no TUF refresh on a device).
    """
    from sigstore.models import ClientTrustConfig, TrustedRoot
    from sigstore.verify import Verifier

    try:
        if rule.trusted_root is None:
            root = ClientTrustConfig.production(offline=True).trusted_root
            doc = root._inner.to_dict()  # the package's own parsed copy of the same JSON
        else:
            root = TrustedRoot.from_file(str(rule.trusted_root))
            doc = json.loads(rule.trusted_root.read_bytes())
        return Verifier(trusted_root=root), doc
    except Exception as exc:  # missing file, bad JSON, no TUF cache...
        where = rule.trusted_root or "sigstore production (offline cache)"
        raise TrustError(f"keyless bundle: cannot load trusted root {where}: {_one_line(exc)}") from None


def _cert_identity(cert: Certificate) -> tuple[str, list[str]]:
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


def _identity_matches(ident: KeylessIdentity, issuer: str, sans: list[str]) -> bool:
    """Cheap pre-check on the (not yet verified) certificate; sigstore's policy re-checks after verification."""
    if ident.subject is not None:
        return issuer == ident.issuer and ident.subject in sans
    if ident.subject_regex is not None:
        return issuer == ident.issuer and any(re.fullmatch(ident.subject_regex, s) for s in sans)
    return False  # an identity must name a subject; config parsing enforces it


def _sigstore_policy(ident: KeylessIdentity) -> Any:
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
        _, sans = _cert_identity(cert)
        if not any(re.fullmatch(self._pattern, s) for s in sans):
            raise VerificationError(f"no certificate SAN fully matches {self._pattern!r}: {sans}")


def _check_statement(payload_type: str, payload: bytes, digest: str) -> str:
    """The in-toto statement must name ``digest`` as a subject: the bundle is about *this* image."""
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
    return f"in-toto statement, predicate {statement.get('predicateType', '?')}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


__all__ = ["verify_keyless_bundle"]
