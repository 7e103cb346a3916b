"""Real cosign / containers-image signatures (shared corpus) served by a real registry over loopback.

The signatures are the corpus's bytes, re-hosted as a registry copy would:
a ``.sig`` tag, or an OCI 1.1 referrer found through the referrers API
(tests/support/referrers_server.py puts that API in front of the test
registry, which has none). The signed images live on ``192.168.64.2:5000``
in the corpus; here they sit under a mirror prefix, so they verify only
through a ``signed_identity`` remap, as a mirrored image must.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gitops_edge.adapters.registry.client import OCI_MANIFEST, RegistryClient
from gitops_edge.adapters.registry.signature_formats import COSIGN_SIG_ARTIFACT, SIMPLE_SIGNING_TYPE, legacy_tag
from gitops_edge.adapters.registry.signatures import SignatureVerifier
from gitops_edge.engine.image_policy import ImagePolicy
from gitops_edge.errors import TrustError
from gitops_edge.model.trust import KeylessIdentity, SignedIdentity, TrustPolicy, TrustRule
from tests.support.corpus import corpus
from tests.support.referrers_server import ReferrersFront

SIGNED_HOST = "192.168.64.2:5000"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def corpus_layer(*parts: str) -> tuple[bytes, dict[str, str]]:
    raw = corpus("sigstore", "containers-image", *parts).read_bytes()
    doc = json.loads(raw[len(b"\0sigstore-json\n"):])
    return base64.b64decode(doc["payload"]), dict(doc["annotations"])


def signature_manifest(client: RegistryClient, repository: str, payload: bytes, annotations: dict[str, str],
                       subject: str | None = None) -> bytes:
    """Cosign's signature manifest for one layer: as a ``.sig`` image, or (``subject``) an OCI 1.1 referrer."""
    client.push_blob(repository, payload)
    config = b"{}"
    client.push_blob(repository, config)
    doc: dict[str, object] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": EMPTY_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": SIMPLE_SIGNING_TYPE, "digest": sha256(payload), "size": len(payload),
                    "annotations": annotations}],
    }
    if subject is not None:
        doc["artifactType"] = COSIGN_SIG_ARTIFACT
        doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}
    return json.dumps(doc, separators=(",", ":")).encode()


@pytest.fixture
def mirror(registry: str) -> str:
    return f"{registry}/sigmirror-{uuid.uuid4().hex[:10]}"


def remap(mirror: str) -> SignedIdentity:
    return SignedIdentity(mode="remap", prefix=mirror, signed_prefix=SIGNED_HOST)


@pytest.fixture
def keyless_copy(mirror: str) -> tuple[str, str]:
    """The corpus's cosign v2 keyless signature, copied with its image's name under the mirror prefix."""
    client = RegistryClient()
    repository = f"{mirror}/cosign-signed/fulcio-rekor-1"
    digest = sha256(corpus("sigstore", "containers-image", "dir-img-cosign-fulcio-rekor-valid",
                           "manifest.json").read_bytes())
    payload, annotations = corpus_layer("dir-img-cosign-fulcio-rekor-valid", "signature-1")
    body = signature_manifest(client, repository, payload, annotations)
    client.push_manifest(repository, legacy_tag(digest), body, OCI_MANIFEST)
    return repository, digest


def keyless_rule(mirror: str, **kw: object) -> TrustRule:
    return TrustRule(match=f"{mirror}/*", trusted_root=corpus("sigstore", "sigstore-python",
                                                               "production_trusted_root.json"),
                     keyless=(KeylessIdentity(issuer="https://github.com/login/oauth", subject="mitr@redhat.com"),),
                     **kw)  # type: ignore[arg-type]


def test_mirrored_keyless_sig_needs_a_remap(mirror: str, keyless_copy: tuple[str, str]) -> None:
    repository, digest = keyless_copy
    policy = ImagePolicy(TrustPolicy(rules=(keyless_rule(mirror),)), SignatureVerifier())
    with pytest.raises(TrustError, match=r"signed for another repository \(192\.168\.64\.2:5000/cosign-signed/"
                                         r"fulcio-rekor-1\)") as exc:
        policy.check(f"{repository}@{digest}")
    assert not exc.value.retryable
    remapped = ImagePolicy(TrustPolicy(rules=(keyless_rule(mirror, signed_identity=remap(mirror)),)),
                           SignatureVerifier())
    verdict = remapped.check(f"{repository}@{digest}")
    (ev,) = verdict.evidence
    assert ev.format == "cosign-sig-keyless" and ev.signer == "https://github.com/login/oauth: mitr@redhat.com"
    assert ev.detail.startswith(legacy_tag(digest)) and "index 11605770" in ev.log
    assert ev.time_source == "transparency log 2023-01-20T20:51:33Z"


@pytest.mark.parametrize("now", [datetime(1970, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)])
def test_unset_clock_refuses_retryably(mirror: str, keyless_copy: tuple[str, str], now: datetime) -> None:
    """No RTC: 1970 or the build date. Keyless checks wait for the clock instead of blaming the signer."""
    repository, digest = keyless_copy
    rule = keyless_rule(mirror, signed_identity=remap(mirror))
    policy = ImagePolicy(TrustPolicy(rules=(rule,)), SignatureVerifier(clock=lambda: now))
    with pytest.raises(TrustError, match="the device clock is not set") as exc:
        policy.check(f"{repository}@{digest}")
    assert exc.value.retryable


@pytest.fixture
def front(registry: str) -> Iterator[ReferrersFront]:
    with ReferrersFront(registry).running() as server:
        yield server


def test_oci_referrers_api_finds_cosign_oci_1_1_signatures(mirror: str, front: ReferrersFront) -> None:
    """``cosign sign --registry-referrers-mode=oci-1-1``: no .sig tag, no fallback index, only the API."""
    client = RegistryClient()
    path = f"{mirror.split('/', 1)[1]}/cosign-signed-single-sample"
    digest = sha256(corpus("sigstore", "containers-image", "dir-img-cosign-valid", "manifest.json").read_bytes())
    payload, annotations = corpus_layer("dir-img-cosign-valid", "signature-1")
    body = signature_manifest(client, f"{mirror}/cosign-signed-single-sample", payload, annotations, subject=digest)
    ref_digest = client.push_manifest(f"{mirror}/cosign-signed-single-sample", sha256(body), body, OCI_MANIFEST)
    front.referrers[(path, digest)] = [{"mediaType": OCI_MANIFEST, "digest": ref_digest, "size": len(body),
                                        "artifactType": COSIGN_SIG_ARTIFACT}]
    repository = f"{front.address}/{path}"
    rule = TrustRule(match="*", keys=(corpus("sigstore", "containers-image", "cosign.pub"),),
                     signed_identity=SignedIdentity(mode="remap", prefix=f"{front.address}/{mirror.split('/', 1)[1]}",
                                                    signed_prefix=SIGNED_HOST))
    (ev,) = SignatureVerifier().verify(repository, digest, rule)
    assert ev.format == "cosign-sig" and ev.detail.startswith("referrer sha256:")
    assert front.asked == [f"/v2/{path}/referrers/{digest}"]
    with pytest.raises(TrustError, match="signed for another repository"):
        SignatureVerifier().verify(repository, digest, replace(rule, signed_identity=SignedIdentity()))
    # the API lists it, but for another subject: refused, not ignored
    other = sha256(b"another image")
    front.referrers[(path, other)] = front.referrers[(path, digest)]
    with pytest.raises(TrustError, match="referrer is about another digest"):
        SignatureVerifier().verify(repository, other, rule)


def test_tlog_required_key_signature_from_the_registry(mirror: str) -> None:
    client = RegistryClient()
    repository = f"{mirror}/cosign-signed/key-1"
    digest = sha256(corpus("sigstore", "containers-image", "dir-img-cosign-key-rekor-valid",
                           "manifest.json").read_bytes())
    payload, annotations = corpus_layer("dir-img-cosign-key-rekor-valid", "signature-1")
    client.push_manifest(repository, legacy_tag(digest), signature_manifest(client, repository, payload, annotations),
                         OCI_MANIFEST)
    key: Path = corpus("sigstore", "containers-image", "cosign2.pub")
    rule = TrustRule(match="*", keys=(key,), tlog="required", signed_identity=remap(mirror),
                     trusted_root=corpus("sigstore", "sigstore-python", "production_trusted_root.json"))
    (ev,) = SignatureVerifier().verify(repository, digest, rule)
    assert ev.log.endswith("index 11608800, SET") and ev.time_source.startswith("transparency log 2023-01-20")
    # a copy without the Rekor annotation: fine without the tlog requirement, refused with it
    stripped = {k: v for k, v in annotations.items() if k != "dev.sigstore.cosign/bundle"}
    client.push_manifest(repository, legacy_tag(digest), signature_manifest(client, repository, payload, stripped),
                         OCI_MANIFEST)
    assert SignatureVerifier().verify(repository, digest, replace(rule, tlog="optional"))
    with pytest.raises(TrustError, match="tlog is required, but the signature has no Rekor bundle"):
        SignatureVerifier().verify(repository, digest, rule)
