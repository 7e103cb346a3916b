"""Trusted-root validity windows at signing time, which the ``sigstore`` package leaves unchecked.

sigstore-python (4.x) keeps expired CAs and log keys usable for verification
("they may have been valid when it signed") but never checks that the signing
happened inside their ``validFor`` window. A retired or compromised Fulcio CA,
Rekor or CT log key would then keep vouching for new signatures forever: the
window is exactly how a trusted root bounds that, so it is checked here after
sigstore has verified the bundle (so the times used are verified ones).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gitops_edge.errors import TrustError

if TYPE_CHECKING:
    from cryptography.x509 import Certificate


def check_windows(root: dict[str, Any], cert: Certificate, times: Sequence[datetime], log_key_id: bytes) -> None:
    """Refuse unless the issuing CA and the log key were valid at every verified signing time,
    and each CT log key at its SCT's time.

    ``times`` are the verified ones (a Rekor v1 integrated time bound by its
    SET, or RFC 3161 timestamps from a trusted TSA); a Rekor v2 entry carries
    no time of its own and is bounded by the TSA's.
    """
    if not times:
        raise TrustError("no verified signing time (neither a log integrated time nor a trusted timestamp)")
    for signed_at in times:
        _check_ca(root.get("certificateAuthorities") or [], cert, signed_at)
        _check_log(root.get("tlogs") or [], log_key_id, signed_at, "Rekor")
    for sct_log_id, sct_time in _scts(cert):
        _check_log(root.get("ctlogs") or [], sct_log_id, sct_time, "CT log")


def entry_log_id(tlog_entry: dict[str, Any]) -> bytes:
    """A bundle's log entry's key id (base64 in protobuf JSON)."""
    return _b64((tlog_entry.get("logId") or {}).get("keyId", ""))


def _check_ca(cas: list[dict[str, Any]], leaf: Certificate, at: datetime) -> None:
    from cryptography import x509

    issuers = []
    for ca in cas:
        chain = [c.get("rawBytes", "") for c in (ca.get("certChain") or {}).get("certificates") or []]
        try:
            issuer = x509.load_der_x509_certificate(_b64(chain[0]))
            leaf.verify_directly_issued_by(issuer)
        except Exception:  # not this CA (or an unusable entry): try the next
            continue
        if _inside(ca.get("validFor"), at):
            return
        issuers.append(ca.get("uri", "?"))
    if issuers:
        raise TrustError(f"signed at {at:%Y-%m-%dT%H:%M:%SZ}, outside the validity of "
                         f"the issuing CA {issuers[0]} in the trusted root")
    raise TrustError("no CA in the trusted root issued the signing certificate")


def _check_log(logs: list[dict[str, Any]], log_id: bytes, at: datetime, what: str) -> None:
    known = [log for log in logs if _b64((log.get("logId") or {}).get("keyId", "")) == log_id]
    if not known:
        raise TrustError(f"the {what} key is not in the trusted root")
    if not any(_inside((log.get("publicKey") or {}).get("validFor"), at) for log in known):
        raise TrustError(f"{what} key {known[0].get('baseUrl', '?')} was not valid "
                         f"at {at:%Y-%m-%dT%H:%M:%SZ} per the trusted root")


def _scts(cert: Certificate) -> list[tuple[bytes, datetime]]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        return []  # sigstore has already required a valid SCT; nothing more to bound
    return [(sct.log_id, sct.timestamp.replace(tzinfo=UTC)) for sct in ext]


def _inside(window: dict[str, Any] | None, at: datetime) -> bool:
    if not window:
        return True  # no window: always valid (the trusted-root spec's meaning)
    start, end = window.get("start"), window.get("end")
    return (start is None or parse_time(start) <= at) and (end is None or at <= parse_time(end))


def parse_time(text: str) -> datetime:
    """A protobuf-JSON timestamp: RFC 3339, 'Z' or an offset, up to nanoseconds."""
    try:
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise TrustError(f"bad validFor time {str(text)[:40]!r} in the trusted root") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        return b""
