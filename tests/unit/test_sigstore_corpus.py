"""Verification of real cosign / sigstore artifacts (shared/corpus/sigstore), and tampered copies of them.

Pure: the artifacts are files, the checks run over their bytes (no registry).
Every tampered variant is derived here, in memory, and must be refused with
the reason that names what was tampered with.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.adapters.registry.bundle_tlog import verify_key_bundle_tlog
from gitops_edge.adapters.registry.client import OCI_MANIFEST, Manifest
from gitops_edge.adapters.registry.keyless import verify_keyless_bundle
from gitops_edge.adapters.registry.signature_crypto import PublicKey, load_key
from gitops_edge.adapters.registry.signature_formats import Rejected, legacy_tag
from gitops_edge.adapters.registry.signatures import SignatureVerifier
from gitops_edge.adapters.registry.trust_root import check_clock, clock_floor
from gitops_edge.adapters.registry.verify_one import verify_bundle, verify_legacy
from gitops_edge.errors import ImageNotFoundError, TrustError
from gitops_edge.model.trust import KeylessIdentity, SignedIdentity, TrustRule
from tests.support.corpus import corpus

SIG = "dev.cosignproject.cosign/signature"
CERT = "dev.sigstore.cosign/certificate"
BUNDLE = "dev.sigstore.cosign/bundle"
GITHUB_OAUTH = "https://github.com/login/oauth"


def production_root() -> Path:
    return corpus("sigstore", "sigstore-python", "production_trusted_root.json")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layer:
    """One containers/image ``signature-N`` file: a ``.sig`` manifest layer (payload + annotations)."""

    def __init__(self, *parts: str) -> None:
        raw = corpus("sigstore", "containers-image", *parts).read_bytes()
        prefix = b"\0sigstore-json\n"
        assert raw.startswith(prefix)
        doc = json.loads(raw[len(prefix):])
        self.media_type: str = doc["mimeType"]
        self.payload = base64.b64decode(doc["payload"])
        self.annotations: dict[str, str] = dict(doc["annotations"])

    @property
    def signature(self) -> bytes:
        return base64.b64decode(self.annotations[SIG])

    def rekor(self) -> dict[str, Any]:
        return json.loads(self.annotations[BUNDLE])

    def with_rekor(self, change: Callable[[dict[str, Any]], None]) -> Layer:
        other = copy.deepcopy(self)
        doc = self.rekor()
        change(doc)
        other.annotations[BUNDLE] = json.dumps(doc)
        return other

    def verify(self, repository: str, digest: str, rule: TrustRule, keys: tuple[PublicKey, ...] = (),
               tag: str | None = None) -> Any:
        return verify_legacy(self.annotations, self.payload, self.signature, repository, digest, rule, keys,
                             tag=tag)


def manifest_digest(case: str) -> str:
    return sha256(corpus("sigstore", "containers-image", case, "manifest.json").read_bytes())


# -- cosign key signatures (containers/image fixtures) ---------------------------------------

KEY_REPO = "192.168.64.2:5000/cosign-signed-single-sample"


def key_rule(name: str = "cosign.pub", **kw: Any) -> tuple[TrustRule, tuple[PublicKey, ...]]:
    path = corpus("sigstore", "containers-image", name)
    return TrustRule(match="*", keys=(path,), trusted_root=production_root(), **kw), (load_key(path),)


@pytest.mark.parametrize("sig", [("dir-img-cosign-valid", "signature-1"), ("dir-img-cosign-valid-2", "signature-2")])
def test_cosign_key_signatures_verify(sig: tuple[str, str]) -> None:
    rule, keys = key_rule()
    ev = Layer(*sig).verify(KEY_REPO, manifest_digest("dir-img-cosign-valid"), rule, keys)
    assert ev.format == "cosign-sig" and ev.signer.endswith("cosign.pub") and ev.log == ""


def test_cosign_key_signature_refusals() -> None:
    rule, keys = key_rule()
    digest = manifest_digest("dir-img-cosign-valid")
    layer = Layer("dir-img-cosign-valid", "signature-1")
    unknown = json.loads(corpus("sigstore", "containers-image", "unknown-cosign-key.signature").read_bytes()[15:])
    with pytest.raises(Rejected, match="signature does not verify"):
        verify_legacy(unknown["annotations"], base64.b64decode(unknown["payload"]),
                      base64.b64decode(unknown["annotations"][SIG]), KEY_REPO, digest, rule, keys)
    with pytest.raises(Rejected, match="signed for another digest"):
        layer.verify(KEY_REPO, manifest_digest("dir-img-cosign-modified-manifest"), rule, keys)
    with pytest.raises(Rejected, match="signed for another repository"):
        layer.verify("192.168.64.2:5000/someone-else", digest, rule, keys)
    tampered = copy.deepcopy(layer)
    tampered.payload = layer.payload.replace(b"cosign-signed-single-sample", b"cosign-signed-single-sampl3")
    with pytest.raises(Rejected, match="signature does not verify"):
        tampered.verify(KEY_REPO, digest, rule, keys)
    other_rule, other_keys = key_rule("cosign2.pub")
    with pytest.raises(Rejected, match="signature does not verify"):
        layer.verify(KEY_REPO, digest, other_rule, other_keys)
    no_keys = TrustRule(match="*", keyless=(KeylessIdentity(issuer=GITHUB_OAUTH, subject="x@example.com"),))
    with pytest.raises(Rejected, match="the rule names no keys"):
        layer.verify(KEY_REPO, digest, no_keys, ())


class MemoryRegistry:
    """The three reads discovery makes (manifest, blob, referrers), served from dicts: no I/O to fake."""

    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.blobs: dict[str, bytes] = {}
        self.api: dict[str, dict[str, object]] | None = None  # digest -> referrers index; None: no API

    def manifest(self, repository: str, reference: str) -> Manifest:
        body = self.manifests.get((repository, reference))
        if body is None:
            raise ImageNotFoundError(f"{repository}:{reference}")
        return Manifest(digest=sha256(body), media_type=OCI_MANIFEST, body=body)

    def blob(self, repository: str, digest: str, max_bytes: int = 0) -> bytes:
        return self.blobs[digest]

    def referrers(self, repository: str, digest: str) -> dict[str, object] | None:
        return None if self.api is None else self.api.get(digest, {"manifests": []})

    def sig_tag(self, repository: str, digest: str, *layers: Layer) -> None:
        descs = []
        for layer in layers:
            self.blobs[sha256(layer.payload)] = layer.payload
            descs.append({"mediaType": layer.media_type, "digest": sha256(layer.payload),
                          "size": len(layer.payload), "annotations": layer.annotations})
        self.manifests[(repository, legacy_tag(digest))] = json.dumps({"schemaVersion": 2, "layers": descs}).encode()


def memory_verifier(registry: MemoryRegistry, now: datetime | None = None) -> SignatureVerifier:
    return SignatureVerifier(client=registry, clock=(lambda: now) if now else None)  # type: ignore[arg-type]


def test_other_attachment_is_not_a_signature_layer() -> None:
    """containers/image's negative fixture: a text/plain layer carrying a copied, valid signature annotation."""
    registry = MemoryRegistry()
    digest = manifest_digest("dir-img-cosign-valid")
    registry.sig_tag(KEY_REPO, digest, Layer("dir-img-cosign-other-attachment", "signature-1"))
    rule, _ = key_rule()
    with pytest.raises(TrustError, match="found 1 cosign signature: layer is not a simple-signing payload"):
        memory_verifier(registry).verify(KEY_REPO, digest, rule)
    registry.sig_tag(KEY_REPO, digest, Layer("dir-img-cosign-other-attachment", "signature-1"),
                     Layer("dir-img-cosign-valid", "signature-1"))
    (ev,) = memory_verifier(registry).verify(KEY_REPO, digest, rule)
    assert ev.detail.startswith(legacy_tag(digest) + " layer sha256:")


def test_an_unset_clock_blocks_only_what_needs_time() -> None:
    """1970: the keyless signature waits (retryably); a plain key signature on the same image still verifies."""
    digest = manifest_digest("dir-img-cosign-fulcio-rekor-valid")
    registry = MemoryRegistry()
    registry.sig_tag(KEYLESS_REPO, digest, keyless_layer())
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(TrustError, match="the device clock is not set") as exc:
        memory_verifier(registry, epoch).verify(KEYLESS_REPO, digest, keyless_rule())
    assert exc.value.retryable
    (ev,) = memory_verifier(registry).verify(KEYLESS_REPO, digest, keyless_rule())
    assert ev.format == "cosign-sig-keyless"
    key_registry = MemoryRegistry()
    key_registry.sig_tag(KEY_REPO, manifest_digest("dir-img-cosign-valid"), Layer("dir-img-cosign-valid",
                                                                                   "signature-1"))
    assert memory_verifier(key_registry, epoch).verify(KEY_REPO, manifest_digest("dir-img-cosign-valid"),
                                                       key_rule()[0])
    with pytest.raises(TrustError, match="the device clock is not set"):  # tlog: required needs the root's keys
        memory_verifier(key_registry, epoch).verify(KEY_REPO, manifest_digest("dir-img-cosign-valid"),
                                                    key_rule(tlog="required")[0])


# -- key signatures with a Rekor bundle: tlog required ---------------------------------------

KEY_REKOR_REPO = "192.168.64.2:5000/cosign-signed/key-1"


def test_key_signature_with_rekor_bundle_verifies_under_tlog_required() -> None:
    rule, keys = key_rule("cosign2.pub", tlog="required")
    ev = Layer("dir-img-cosign-key-rekor-valid", "signature-1").verify(
        KEY_REKOR_REPO, manifest_digest("dir-img-cosign-key-rekor-valid"), rule, keys)
    assert ev.log == "rekor v1 (hashedrekord 0.0.1) index 11608800, SET"
    assert ev.time_source == "transparency log 2023-01-20T21:57:39Z"


def test_tlog_required_refusals() -> None:
    rule, keys = key_rule("cosign2.pub", tlog="required")
    digest = manifest_digest("dir-img-cosign-key-rekor-valid")
    layer = Layer("dir-img-cosign-key-rekor-valid", "signature-1")
    plain_rule, plain_keys = key_rule("cosign.pub", tlog="required")
    with pytest.raises(Rejected, match="no Rekor bundle"):
        Layer("dir-img-cosign-valid", "signature-1").verify(KEY_REPO, manifest_digest("dir-img-cosign-valid"),
                                                             plain_rule, plain_keys)

    def later(doc: dict[str, Any]) -> None:
        doc["Payload"]["integratedTime"] += 1

    def flipped(doc: dict[str, Any]) -> None:
        set_ = bytearray(base64.b64decode(doc["SignedEntryTimestamp"]))
        set_[-1] ^= 1
        doc["SignedEntryTimestamp"] = base64.b64encode(bytes(set_)).decode()

    for change in (later, flipped):
        with pytest.raises(Rejected, match="signed entry timestamp does not verify"):
            layer.with_rekor(change).verify(KEY_REKOR_REPO, digest, rule, keys)
    # a genuine SET, but for another signature (the keyless one's): it must not lend its time
    keyless_rekor = Layer("dir-img-cosign-fulcio-rekor-valid", "signature-1").annotations[BUNDLE]
    swapped = copy.deepcopy(layer)
    swapped.annotations[BUNDLE] = keyless_rekor
    with pytest.raises(Rejected, match="Rekor entry is for another payload"):
        swapped.verify(KEY_REKOR_REPO, digest, rule, keys)
    staging = TrustRule(match="*", keys=rule.keys, tlog="required",
                        trusted_root=corpus("sigstore", "sigstore-python", "staging_trusted_root.json"))
    with pytest.raises(Rejected, match="signed entry timestamp does not verify"):
        layer.verify(KEY_REKOR_REPO, digest, staging, keys)
    # without tlog: required the same signature needs no log (and gets no log evidence)
    assert layer.verify(KEY_REKOR_REPO, digest, key_rule("cosign2.pub")[0], keys).log == ""


# -- cosign v2 keyless .sig (certificate, chain, Rekor bundle annotations) -------------------

KEYLESS_REPO = "192.168.64.2:5000/cosign-signed/fulcio-rekor-1"


def keyless_rule(subject: str = "mitr@redhat.com", issuer: str = GITHUB_OAUTH, **kw: Any) -> TrustRule:
    return TrustRule(match="*", keyless=(KeylessIdentity(issuer=issuer, subject=subject),),
                     trusted_root=kw.pop("trusted_root", production_root()), **kw)


def keyless_layer() -> Layer:
    return Layer("dir-img-cosign-fulcio-rekor-valid", "signature-1")


def test_cosign_keyless_sig_verifies() -> None:
    ev = keyless_layer().verify(KEYLESS_REPO, manifest_digest("dir-img-cosign-fulcio-rekor-valid"), keyless_rule())
    assert ev.format == "cosign-sig-keyless"
    assert ev.signer == f"{GITHUB_OAUTH}: mitr@redhat.com"
    assert ev.log == "rekor v1 (hashedrekord 0.0.1) index 11605770, SET"
    assert ev.time_source == "transparency log 2023-01-20T20:51:33Z"
    regex = TrustRule(match="*", trusted_root=production_root(),
                      keyless=(KeylessIdentity(issuer=GITHUB_OAUTH, subject_regex=r"[a-z]+@redhat\.com"),))
    assert keyless_layer().verify(KEYLESS_REPO, manifest_digest("dir-img-cosign-fulcio-rekor-valid"), regex)


def _resign_chain_root(tmp: Path, end: str) -> Path:
    """The production root with every Fulcio CA's validity ending at ``end``."""
    doc = json.loads(production_root().read_bytes())
    for ca in doc["certificateAuthorities"]:
        ca["validFor"]["end"] = end
    path = tmp / "trusted_root.json"
    path.write_text(json.dumps(doc))
    return path


def _pem_of_other_cert() -> str:
    """A real Fulcio leaf for someone else (the sigstore-python production bundle's)."""
    bundle = json.loads(corpus("sigstore", "sigstore-python", "bundle_v3_github.whl.sigstore").read_bytes())
    material = bundle["verificationMaterial"]
    der = base64.b64decode(material.get("certificate", {}).get("rawBytes")
                           or material["x509CertificateChain"]["certificates"][0]["rawBytes"])
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def test_cosign_keyless_sig_refusals(tmp_path: Path) -> None:
    digest = manifest_digest("dir-img-cosign-fulcio-rekor-valid")
    layer = keyless_layer()

    def refused(variant: Layer, rule: TrustRule, match: str, repository: str = KEYLESS_REPO) -> None:
        with pytest.raises(Rejected, match=match):
            variant.verify(repository, digest, rule)

    refused(layer, keyless_rule(subject="someone@redhat.com"), "certificate is for .*mitr@redhat.com, no trusted")
    refused(layer, keyless_rule(issuer="https://accounts.google.com"), "no trusted identity")
    refused(layer, keyless_rule(trusted_root=corpus("sigstore", "sigstore-python", "staging_trusted_root.json")),
            "signed entry timestamp does not verify")
    refused(layer, TrustRule(match="*", keys=(corpus("sigstore", "containers-image", "cosign.pub"),)),
            "keyless signature, but the rule names no keyless identities")
    refused(layer.with_rekor(lambda d: d["Payload"].update(integratedTime=d["Payload"]["integratedTime"] + 3600)),
            keyless_rule(), "signed entry timestamp does not verify")
    no_rekor = copy.deepcopy(layer)
    del no_rekor.annotations[BUNDLE]
    refused(no_rekor, keyless_rule(), "without a Rekor bundle: no verified signing time")
    # the key signature's genuine Rekor bundle: a valid SET, for another payload, signature and signer
    key_rekor = copy.deepcopy(layer)
    key_rekor.annotations[BUNDLE] = Layer("dir-img-cosign-key-rekor-valid", "signature-1").annotations[BUNDLE]
    refused(key_rekor, keyless_rule(), "Rekor entry is for another payload")
    bad_sig = copy.deepcopy(layer)
    sig = bytearray(layer.signature)
    sig[-1] ^= 1
    bad_sig.annotations[SIG] = base64.b64encode(bytes(sig)).decode()
    refused(bad_sig, keyless_rule(), "signature does not verify with the certificate")
    other_payload = copy.deepcopy(layer)
    other_payload.payload = layer.payload.replace(b"fulcio-rekor-1", b"fulcio-rekor-2")
    refused(other_payload, keyless_rule(), "signature does not verify with the certificate")
    other_cert = copy.deepcopy(layer)
    other_cert.annotations[CERT] = _pem_of_other_cert()
    refused(other_cert, keyless_rule(subject="https://github.com/trailofbits/rfc8785.py/.github/workflows/"
                                             "release.yml@refs/tags/v0.1.2",
                                     issuer="https://token.actions.githubusercontent.com"),
            "signature does not verify with the certificate|not valid at the logged time|does not chain")
    garbage = copy.deepcopy(layer)
    garbage.annotations[CERT] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    refused(garbage, keyless_rule(), "not a PEM certificate")
    refused(layer, keyless_rule(), "signed for another repository", repository="192.168.64.2:5000/other")
    with pytest.raises(Rejected, match="signed for another digest"):
        layer.verify(KEYLESS_REPO, manifest_digest("dir-img-cosign-valid"), keyless_rule())
    # the trusted root retired its Fulcio CAs before January 2023: a signature from then is refused
    refused(layer, keyless_rule(trusted_root=_resign_chain_root(tmp_path, "2022-12-31T00:00:00Z")),
            "outside the validity of the issuing CA")


# -- containers/image's own signatures: docker-reference with a tag --------------------------

TAGGED_REPO = "192.168.64.2:5000/skopeo-signed"


def test_skopeo_signature_with_tagged_reference() -> None:
    layer = Layer("dir-img-cosign-valid-with-tag", "signature-1")
    digest = manifest_digest("dir-img-cosign-valid-with-tag")
    rule, keys = key_rule()
    assert layer.verify(TAGGED_REPO, digest, rule, keys).format == "cosign-sig"
    exact = replace(rule, signed_identity=SignedIdentity(mode="exact"))
    assert layer.verify(TAGGED_REPO, digest, exact, keys, tag="tag")
    with pytest.raises(Rejected, match=re.escape("not exactly 192.168.64.2:5000/skopeo-signed:latest")):
        layer.verify(TAGGED_REPO, digest, exact, keys, tag="latest")
    with pytest.raises(Rejected, match="signed for another repository"):
        layer.verify("127.0.0.1:5055/mirror/skopeo-signed", digest, rule, keys)
    remap = replace(rule, signed_identity=SignedIdentity(mode="remap", prefix="127.0.0.1:5055/mirror",
                                                         signed_prefix="192.168.64.2:5000"))
    assert layer.verify("127.0.0.1:5055/mirror/skopeo-signed", digest, remap, keys)


# -- sigstore bundles ------------------------------------------------------------------------

CONFORMANCE_IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
                        ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
CONFORMANCE_ISSUER = "https://token.actions.githubusercontent.com"
# Bundles sigstore-python 4.x refuses though the conformance suite expects them to pass; a refusal
# is the safe direction, and each reason is pinned so a change in sigstore shows up here.
SIGSTORE_DEVIATIONS = {
    # sigstore-python compares the TSA time with the end of its validity exclusively
    "trust-root-tsa-validity-end-inclusive": "not enough sources of verified time",
    # intoto 0.0.2 log entries are not supported by sigstore-python
    "intoto-with-custom-trust-root": "only supported for dsse/hashedrekord 0.0.1",
}
# Valid attestations that are not image signatures (the one predicate rule, README "Trust")
ATTESTATIONS = {"happy-path-intoto-in-dsse-v3", "rekor2-dsse-happy-path"}


def conformance_cases() -> list[str]:
    """The case names (collected early: a missing corpus becomes one failing case, not a collection error)."""
    try:
        root = corpus("sigstore", "conformance")
    except AssertionError:
        return ["corpus-missing"]
    return sorted(p.name for p in root.iterdir() if (p / "bundle.sigstore.json").exists()
                  and not (p / "key.pub").exists() and p.name != "managed-key-no-key_fail")


def conformance_rule(case: Path) -> tuple[TrustRule, str]:
    top = case.parent
    artifact = case / "artifact" if (case / "artifact").exists() else top / "a.txt"
    identity = (case / "identity").read_text().strip() if (case / "identity").exists() else CONFORMANCE_IDENTITY
    issuer = (case / "issuer").read_text().strip() if (case / "issuer").exists() else CONFORMANCE_ISSUER
    root = case / "trusted_root.json" if (case / "trusted_root.json").exists() else production_root()
    rule = TrustRule(match="*", keyless=(KeylessIdentity(issuer=issuer, subject=identity),), trusted_root=root)
    return rule, sha256(artifact.read_bytes())


def test_conformance_suite_is_all_here() -> None:
    assert len(conformance_cases()) >= 60


@pytest.mark.parametrize("name", conformance_cases())
def test_conformance_bundle(name: str) -> None:
    case = corpus("sigstore", "conformance", name)
    rule, digest = conformance_rule(case)
    bundle = (case / "bundle.sigstore.json").read_bytes()
    if name.endswith("_fail") or name in SIGSTORE_DEVIATIONS or name in ATTESTATIONS:
        with pytest.raises(TrustError) as exc:
            verify_keyless_bundle(bundle, digest, rule)
        assert "\n" not in exc.value.message
        if name in SIGSTORE_DEVIATIONS:
            assert SIGSTORE_DEVIATIONS[name] in exc.value.message
        if name in ATTESTATIONS:
            assert "https://slsa.dev/provenance/v1 attestation, not a signature" in exc.value.message
        return
    ev = verify_keyless_bundle(bundle, digest, rule)
    assert ev.format == "bundle-keyless" and ev.signer.endswith(rule.keyless[0].subject or "?")
    assert ev.time_source and ev.log


def test_rekor_v2_bundle_is_timed_by_its_tsa() -> None:
    """Rekor v2 entries carry no integrated time: the TSA's is the verified time (and windows use it)."""
    case = corpus("sigstore", "conformance", "rekor2-happy-path")
    rule, digest = conformance_rule(case)
    ev = verify_keyless_bundle((case / "bundle.sigstore.json").read_bytes(), digest, rule)
    assert ev.log.startswith("rekor v2 (hashedrekord 0.0.2)") and "inclusion proof" in ev.log
    assert ev.time_source == "timestamp authority 2025-06-12T12:02:20Z"


def _with_window(root: Path, tmp: Path, section: str, end: str) -> Path:
    doc = json.loads(root.read_bytes())
    for item in doc[section]:
        (item.get("publicKey") or item).setdefault("validFor", {})["end"] = end
    path = tmp / f"{section}.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("name, section, reason", [
    ("rekor2-happy-path", "certificateAuthorities", "outside the validity of the issuing CA"),
    ("rekor2-happy-path", "tlogs", "Rekor key .* was not valid at 2025-06-12T12:02:20Z"),
    ("happy-path-v0.3", "tlogs", "Rekor key .* was not valid at 2024-03-19T17:26:26Z"),
    ("happy-path-v0.3", "ctlogs", "CT log key .* was not valid"),
])
def test_root_windows_bound_both_rekor_versions(tmp_path: Path, name: str, section: str, reason: str) -> None:
    case = corpus("sigstore", "conformance", name)
    rule, digest = conformance_rule(case)
    assert rule.trusted_root is not None
    retired = replace(rule, trusted_root=_with_window(rule.trusted_root, tmp_path, section, "2023-06-01T00:00:00Z"))
    with pytest.raises(TrustError, match=reason):
        verify_keyless_bundle((case / "bundle.sigstore.json").read_bytes(), digest, retired)


@pytest.mark.parametrize("bundle, artifact, subject, issuer, root", [
    ("bundle_v3_github.whl.sigstore", "bundle_v3_github.whl",
     "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
     "https://token.actions.githubusercontent.com", "production"),
    ("bundle.txt.sigstore", "bundle.txt", "a@tny.town", "https://github.com/login/oauth", "staging"),
    ("bundle_v3.txt.sigstore", "bundle_v3.txt", "william@yossarian.net", "https://github.com/login/oauth",
     "staging"),
    ("staging-rekor-v2.txt.sigstore.json", "staging-rekor-v2.txt", "jku@goto.fi", "https://github.com/login/oauth",
     "staging"),
])
def test_sigstore_python_bundles(bundle: str, artifact: str, subject: str, issuer: str, root: str) -> None:
    base = corpus("sigstore", "sigstore-python")
    rule = TrustRule(match="*", keyless=(KeylessIdentity(issuer=issuer, subject=subject),),
                     trusted_root=base / f"{root}_trusted_root.json")
    data = (base / bundle).read_bytes()
    digest = sha256((base / artifact).read_bytes())
    ev = verify_keyless_bundle(data, digest, rule)
    assert ev.signer == f"{issuer}: {subject}"
    with pytest.raises(TrustError, match=r"message digest mismatch|invalid for input|does not match"):
        verify_keyless_bundle(data, sha256(b"another artifact"), rule)


def test_cosign_attestation_is_not_a_signature() -> None:
    """``cosign attest --new-bundle-format``: real and valid, about the image, but an attestation."""
    data = corpus("sigstore", "cosign", "oci-attestation.sigstore.json").read_bytes()
    rule = TrustRule(match="*", keyless=(KeylessIdentity(issuer=GITHUB_OAUTH, subject="cody@soyland.com"),),
                     trusted_root=corpus("sigstore", "cosign", "trusted_root_pgi.json"))
    digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    with pytest.raises(Rejected, match="attestation, not a signature"):
        verify_bundle(data, digest, rule, ())
    with pytest.raises(Rejected, match="subjects do not include"):
        verify_bundle(data, sha256(b"other image"), rule, ())


def test_key_bundle_and_its_log_entry() -> None:
    """npm's publish attestation: a key-signed DSSE bundle whose intoto entry is in production Rekor."""
    base = corpus("sigstore", "sigstore-go")
    data = (base / "bundle-publish.json").read_bytes()
    key_path = base / "publish_key.pub"
    key = load_key(key_path)
    rule = TrustRule(match="*", keys=(key_path,), trusted_root=production_root(), tlog="required")
    # the signature verifies; the statement is about an npm package (sha512), not an image digest
    with pytest.raises(Rejected, match="statement is about another digest"):
        verify_bundle(data, sha256(b"image"), rule, (key,))
    log, time_source = verify_key_bundle_tlog(data, key, rule)
    assert log.startswith("rekor (intoto 0.0.2) index") and log.endswith("SET")
    assert time_source.startswith("transparency log 2023-")
    doc = json.loads(data)
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(Rejected, match="signature does not verify"):
        verify_bundle(json.dumps(doc).encode(), sha256(b"image"), rule, (key,))
    with pytest.raises(Rejected, match="log entry records another signature"):
        verify_key_bundle_tlog(json.dumps(doc).encode(), key, rule)
    doc = json.loads(data)
    doc["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1700000000"
    with pytest.raises(Rejected, match="signed entry timestamp does not verify"):
        verify_key_bundle_tlog(json.dumps(doc).encode(), key, rule)
    other = load_key(corpus("sigstore", "containers-image", "cosign.pub"))
    with pytest.raises(Rejected, match="another signature or signer"):
        verify_key_bundle_tlog(data, other, rule)


def test_key_tlog_reads_rekor_v2_entries() -> None:
    """A real Rekor v2 DSSE entry (hashedrekord 0.0.2): the proof verifies, the digest is the PAE's; the
    logged signer is a certificate, so for any key it is another signer."""
    case = corpus("sigstore", "conformance", "rekor2-dsse-happy-path")
    data = (case / "bundle.sigstore.json").read_bytes()
    key_path = corpus("sigstore", "containers-image", "cosign.pub")
    rule = TrustRule(match="*", keys=(key_path,), trusted_root=case / "trusted_root.json", tlog="required")
    with pytest.raises(Rejected, match="log entry records another signature or signer"):
        verify_key_bundle_tlog(data, load_key(key_path), rule)
    doc = json.loads(data)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(b'{"_type": "tampered"}').decode()
    with pytest.raises(Rejected, match="log entry is for another payload"):
        verify_key_bundle_tlog(json.dumps(doc).encode(), load_key(key_path), rule)
    doc = json.loads(data)
    doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["logIndex"] = "1"
    with pytest.raises(Rejected, match="does not verify against the trusted root"):
        verify_key_bundle_tlog(json.dumps(doc).encode(), load_key(key_path), rule)


# -- the device clock ------------------------------------------------------------------------

@pytest.mark.parametrize("now", [datetime(1970, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)])
def test_an_unset_clock_is_retryable_and_says_so(now: datetime) -> None:
    root = json.loads(production_root().read_bytes())
    with pytest.raises(TrustError, match="the device clock is not set") as exc:
        check_clock(now, root)
    assert exc.value.retryable
    check_clock(datetime(2026, 11, 28, tzinfo=UTC), root)


def test_clock_floor_follows_a_younger_root() -> None:
    root = {"certificateAuthorities": [{"validFor": {"start": "2030-01-01T00:00:00Z"}}]}
    assert clock_floor(root) == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(TrustError, match="not set"):
        check_clock(datetime(2029, 12, 31, tzinfo=UTC), root)
