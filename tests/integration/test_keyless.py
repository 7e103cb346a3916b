"""Keyless sigstore bundles made by sigstore-js against a mock Fulcio/Rekor, verified by our adapter.

The bundles are real (sigstore-js signs them exactly as a CI job would); only the
services are local. Every refusal must be a one-line ``TrustError``, never a crash.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gitops_edge.adapters.registry.keyless import verify_keyless_bundle
from gitops_edge.errors import TrustError
from gitops_edge.model.trust import KeylessIdentity, TrustRule
from tests.support import keyless_producer

ISSUER = "https://token.actions.example"
WORKFLOW = "https://git.example/acme/app/.github/workflows/release.yml@refs/heads/main"
EMAIL = "release@acme.example"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Material:
    root: Path
    digest: str  # the "image" the bundles are about
    manifest: bytes  # stands in for the image manifest: sha256(manifest) == digest
    dir: Path

    def bundle(self, name: str) -> bytes:
        return (self.dir / f"{name}.json").read_bytes()


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    reason = keyless_producer.missing()
    if reason:
        pytest.fail(reason)
    work = tmp_path_factory.mktemp("keyless")
    manifest = b'{"schemaVersion":2,"note":"stand-in manifest"}'
    (work / "manifest").write_bytes(manifest)
    digest = sha256(manifest)
    other = sha256(b"another image")
    name = "127.0.0.1:5055/edge/app"

    def job(out: str, subject: str, **kw: object) -> dict[str, object]:
        return {"out": str(work / f"{out}.json"), "issuer": ISSUER, "subject": subject, **kw}

    root = keyless_producer.produce(work, [
        job("dsse", WORKFLOW, digest=digest, name=name),
        job("dsse-email", EMAIL, digest=digest, name=name),
        job("dsse-other-digest", WORKFLOW, digest=other, name=name),
        job("dsse-tsa", WORKFLOW, digest=digest, name=name, tsa=True),
        job("message", WORKFLOW, kind="message", artifact=str(work / "manifest")),
    ])
    return Material(root=root, digest=digest, manifest=manifest, dir=work)


def rule(material: Material, *identities: KeylessIdentity, root: Path | None = None) -> TrustRule:
    return TrustRule(match="127.0.0.1:5055/edge/*", keyless=identities, trusted_root=root or material.root)


def refused(bundle: bytes, digest: str, trust: TrustRule) -> str:
    with pytest.raises(TrustError) as exc:
        verify_keyless_bundle(bundle, digest, trust)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("keyless bundle"), msg
    return msg


# --- accepted ------------------------------------------------------------------------------------------------------

def test_exact_identity(material: Material) -> None:
    ev = verify_keyless_bundle(material.bundle("dsse"), material.digest,
                               rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW)))
    assert ev.format == "bundle-keyless"
    assert ev.signer == f"{ISSUER}: {WORKFLOW}"
    assert "in-toto statement" in ev.detail and "index" in ev.log and ev.time_source.startswith("transparency log")


def test_subject_regex(material: Material) -> None:
    ident = KeylessIdentity(issuer=ISSUER, subject_regex=r"https://git\.example/acme/[^/]+/\.github/workflows/.*")
    ev = verify_keyless_bundle(material.bundle("dsse"), material.digest, rule(material, ident))
    assert ev.signer == f"{ISSUER}: {WORKFLOW}"


def test_email_identity(material: Material) -> None:
    verify_keyless_bundle(material.bundle("dsse-email"), material.digest,
                          rule(material, KeylessIdentity(issuer=ISSUER, subject=EMAIL)))


def test_any_trusted_identity_suffices(material: Material) -> None:
    trust = rule(material, KeylessIdentity(issuer="https://other", subject=WORKFLOW),
                 KeylessIdentity(issuer=ISSUER, subject=EMAIL),
                 KeylessIdentity(issuer=ISSUER, subject_regex=r".*/release\.yml@refs/heads/main"))
    assert verify_keyless_bundle(material.bundle("dsse"), material.digest, trust).signer.endswith(WORKFLOW)


def test_bundle_with_rfc3161_timestamp(material: Material) -> None:
    verify_keyless_bundle(material.bundle("dsse-tsa"), material.digest,
                          rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW)))


def test_message_signature_over_the_manifest(material: Material) -> None:
    trust = rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW))
    ev = verify_keyless_bundle(material.bundle("message"), material.digest, trust)
    assert "message signature" in ev.detail
    assert "digest mismatch" in refused(material.bundle("message"), sha256(b"another image"), trust)


# --- identity refused ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ident", [
    KeylessIdentity(issuer=ISSUER, subject="https://git.example/evil/app/.github/workflows/release.yml@refs/heads/main"),
    KeylessIdentity(issuer=ISSUER, subject=EMAIL),
    KeylessIdentity(issuer="https://accounts.example", subject=WORKFLOW),  # right subject, wrong issuer
    KeylessIdentity(issuer=ISSUER + "/", subject=WORKFLOW),  # issuers are exact strings
    KeylessIdentity(issuer=ISSUER, subject_regex=r"https://git\.example/acme"),  # must match the whole SAN
    KeylessIdentity(issuer="https://accounts.example", subject_regex=r".*"),
], ids=["other-subject", "other-email", "wrong-issuer", "issuer-trailing-slash", "partial-regex", "regex-wrong-issuer"])
def test_untrusted_identity(material: Material, ident: KeylessIdentity) -> None:
    msg = refused(material.bundle("dsse"), material.digest, rule(material, ident))
    assert WORKFLOW in msg  # says who did sign


def test_statement_about_another_image(material: Material) -> None:
    msg = refused(material.bundle("dsse-other-digest"), material.digest,
                  rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW)))
    assert "subjects do not include" in msg


# --- tampering -----------------------------------------------------------------------------------------------------

def _edit(bundle: bytes, change) -> bytes:
    doc = json.loads(bundle)
    change(doc)
    return json.dumps(doc).encode()


def _swap_statement_digest(doc: dict, digest: str) -> None:
    env = doc["dsseEnvelope"]
    stmt = json.loads(base64.b64decode(env["payload"]))
    stmt["subject"][0]["digest"]["sha256"] = digest.removeprefix("sha256:")
    env["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()


def _flip(b64: str, at: int = 20) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _tlog(doc: dict) -> dict:
    return doc["verificationMaterial"]["tlogEntries"][0]


TAMPERINGS = {
    # re-point the other-digest statement at our image: the signature no longer covers it
    "payload-retargeted": ("dsse-other-digest", lambda d, m: _swap_statement_digest(d, m.digest)),
    "signature-bit": ("dsse", lambda d, m: d["dsseEnvelope"]["signatures"][0].update(
        sig=_flip(d["dsseEnvelope"]["signatures"][0]["sig"], 40))),
    "payload-type": ("dsse", lambda d, m: d["dsseEnvelope"].update(payloadType="application/json")),
    "certificate-bit": ("dsse", lambda d, m: d["verificationMaterial"]["certificate"].update(
        rawBytes=_flip(d["verificationMaterial"]["certificate"]["rawBytes"], 200))),
    "certificate-from-other-bundle": ("dsse", lambda d, m: d["verificationMaterial"].update(
        certificate=json.loads(m.bundle("dsse-email"))["verificationMaterial"]["certificate"])),
    "tlog-body": ("dsse", lambda d, m: _tlog(d).update(canonicalizedBody=_flip(_tlog(d)["canonicalizedBody"], 30))),
    "tlog-set": ("dsse", lambda d, m: _tlog(d)["inclusionPromise"].update(
        signedEntryTimestamp=_flip(_tlog(d)["inclusionPromise"]["signedEntryTimestamp"], 12))),
    "tlog-integrated-time": ("dsse", lambda d, m: _tlog(d).update(
        integratedTime=str(int(_tlog(d)["integratedTime"]) - 3600))),
    "tlog-root-hash": ("dsse", lambda d, m: _tlog(d)["inclusionProof"].update(
        rootHash=_flip(_tlog(d)["inclusionProof"]["rootHash"], 3))),
    "tlog-removed": ("dsse", lambda d, m: d["verificationMaterial"].update(tlogEntries=[])),
    "message-digest": ("message", lambda d, m: d["messageSignature"]["messageDigest"].update(
        digest=base64.b64encode(bytes.fromhex(m.digest.removeprefix("sha256:"))[::-1]).decode())),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampered_bundle(material: Material, name: str) -> None:
    source, change = TAMPERINGS[name]
    bundle = _edit(material.bundle(source), lambda d: change(d, material))
    refused(bundle, material.digest, rule(material, KeylessIdentity(issuer=ISSUER, subject_regex=".*")))


# --- trusted root --------------------------------------------------------------------------------------------------

def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _valid_for(entry: dict) -> dict:
    return entry["publicKey"]["validFor"] if "publicKey" in entry else entry["validFor"]


WINDOWS = {
    "expired": {"start": _iso(timedelta(days=-30)), "end": _iso(timedelta(days=-1))},
    "not-yet-valid": {"start": _iso(timedelta(days=1))},
}


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("part", ["certificateAuthorities", "tlogs", "ctlogs"])
def test_trusted_root_validity_windows(material: Material, tmp_path: Path, part: str, window: str) -> None:
    doc = json.loads(material.root.read_text())
    for entry in doc[part]:
        _valid_for(entry).clear()
        _valid_for(entry).update(WINDOWS[window])
    root = tmp_path / "trusted_root.json"
    root.write_text(json.dumps(doc))
    refused(material.bundle("dsse"), material.digest,
            rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW), root=root))


def test_retired_keys_still_verify_what_they_signed_in_time(material: Material, tmp_path: Path) -> None:
    """Windows that ended after the signing (rotated CA and log keys) still verify old signatures."""
    signed = int(json.loads(material.bundle("dsse"))["verificationMaterial"]["tlogEntries"][0]["integratedTime"])
    end = datetime.fromtimestamp(signed + 1, UTC)
    doc = json.loads(material.root.read_text())
    for part in ("certificateAuthorities", "tlogs", "ctlogs"):
        for entry in doc[part]:
            _valid_for(entry)["end"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    root = tmp_path / "trusted_root.json"
    root.write_text(json.dumps(doc))
    while datetime.now(UTC) <= end:
        time.sleep(0.2)
    verify_keyless_bundle(material.bundle("dsse"), material.digest,
                          rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW), root=root))


def test_production_root_refuses_a_mock_bundle(material: Material) -> None:
    """Without a trusted-root file the package's production root applies, offline: the mock CA is not in it."""
    trust = TrustRule(match="*", keyless=(KeylessIdentity(issuer=ISSUER, subject=WORKFLOW),))
    refused(material.bundle("dsse"), material.digest, trust)


def test_bundle_from_another_sigstore(material: Material, tmp_path: Path) -> None:
    """A bundle valid under one trusted root is refused under another (a second mock CA and log)."""
    other_root = keyless_producer.produce(tmp_path, [])
    refused(material.bundle("dsse"), material.digest,
            rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW), root=other_root))


@pytest.mark.parametrize("content", [None, b"", b"{", b"[]", b'{"mediaType": "x"}'], ids=["missing", "empty",
                                                                                           "bad-json", "list", "junk"])
def test_unusable_trusted_root(material: Material, tmp_path: Path, content: bytes | None) -> None:
    root = tmp_path / "trusted_root.json"
    if content is not None:
        root.write_bytes(content)
    msg = refused(material.bundle("dsse"), material.digest,
                  rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW), root=root))
    assert "trusted root" in msg


# --- garbage in ----------------------------------------------------------------------------------------------------

def _garbage(material: Material) -> dict[str, bytes]:
    good = json.loads(material.bundle("dsse"))
    no_cert = copy.deepcopy(good)
    del no_cert["verificationMaterial"]["certificate"]
    bad_cert = copy.deepcopy(good)
    bad_cert["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(b"not DER").decode()
    not_b64 = copy.deepcopy(good)
    not_b64["dsseEnvelope"]["payload"] = "%%%"
    bad_statement = copy.deepcopy(good)
    bad_statement["verificationMaterial"]["tlogEntries"] = "x"
    return {
        "empty": b"",
        "binary": bytes(range(256)),
        "text": b"garbage",
        "json-null": b"null",
        "json-list": b"[1, 2]",
        "no-material": b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
        "neither-dsse-nor-message": json.dumps({"verificationMaterial": {}}).encode(),
        "truncated": material.bundle("dsse")[: len(material.bundle("dsse")) // 2],
        "no-certificate": json.dumps(no_cert).encode(),
        "certificate-not-der": json.dumps(bad_cert).encode(),
        "payload-not-base64": json.dumps(not_b64).encode(),
        "tlog-entries-not-a-list": json.dumps(bad_statement).encode(),
        "unknown-media-type": _edit(material.bundle("dsse"), lambda d: d.update(mediaType="application/x")),
        "huge": b" " * (4 * 1024 * 1024 + 1),
    }


GARBAGE = ["empty", "binary", "text", "json-null", "json-list", "no-material", "neither-dsse-nor-message",
           "truncated", "no-certificate", "certificate-not-der", "payload-not-base64", "tlog-entries-not-a-list",
           "unknown-media-type", "huge"]


@pytest.mark.parametrize("name", GARBAGE)
def test_garbage_is_refused_not_a_crash(material: Material, name: str) -> None:
    trust = rule(material, KeylessIdentity(issuer=ISSUER, subject_regex=".*"))
    refused(_garbage(material)[name], material.digest, trust)


@pytest.mark.parametrize("digest", ["", "sha256:abc", "sha512:" + "0" * 128, "SHA256:" + "0" * 64])
def test_bad_digest_argument(material: Material, digest: str) -> None:
    refused(material.bundle("dsse"), digest, rule(material, KeylessIdentity(issuer=ISSUER, subject=WORKFLOW)))


def test_rule_without_keyless_identities(material: Material) -> None:
    refused(material.bundle("dsse"), material.digest, rule(material))


def test_bad_regex_in_rule(material: Material) -> None:
    assert "subject_regex" in refused(material.bundle("dsse"), material.digest,
                                      rule(material, KeylessIdentity(issuer=ISSUER, subject_regex="(")))


def test_sigstore_is_imported_lazily() -> None:
    code = ("import sys, gitops_edge.adapters.registry.keyless; "
            "print(any(m.startswith('sigstore') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
