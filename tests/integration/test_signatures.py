"""Signature discovery and verification against the real loopback registry.

Each test pushes a real image to its own repository (``sig/<uuid>/app``) and
signs it with the test signer, which writes cosign's formats.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from gitops_edge.adapters.registry.client import RegistryClient
from gitops_edge.adapters.registry.signatures import SignatureVerifier
from gitops_edge.errors import RegistryError, TrustError
from gitops_edge.model.trust import KeylessIdentity, TrustRule
from tests.support.cosign_signer import (
    KeyPair,
    dsse_bundle,
    generate_key,
    in_toto_statement,
    push_bundle,
    push_legacy_signature,
    simple_signing_payload,
)
from tests.support.images import push

pytestmark = pytest.mark.docker


@dataclass
class Signed:
    repo: str
    digest: str  # v1
    other_digest: str  # v2, same repository
    key: KeyPair
    client: RegistryClient

    def rule(self, *keys: Path) -> TrustRule:
        return TrustRule(match=f"{self.repo}", keys=keys or (self.key.public_path,))


@pytest.fixture
def image(docker_client: docker.DockerClient, registry: str, test_images: dict[str, str],
          tmp_path: Path) -> Iterator[Signed]:
    repo = f"{registry}/sig/{uuid.uuid4().hex[:12]}/app"
    digests = {}
    for v in ("v1", "v2"):
        docker_client.images.get(test_images[v]).tag(repo, v)
        try:
            digests[v] = push(docker_client, f"{repo}:{v}")
        finally:
            docker_client.images.remove(f"{repo}:{v}")
    yield Signed(repo, digests["v1"], digests["v2"], generate_key(tmp_path), RegistryClient())


def refusal(signed: Signed, rule: TrustRule | None = None) -> str:
    with pytest.raises(TrustError) as info:
        SignatureVerifier().verify(signed.repo, signed.digest, rule or signed.rule())
    assert info.value.exit_code == 3
    message = str(info.value)
    assert message.startswith(f"{signed.repo}@{signed.digest[:19]}"), message
    assert "\n" not in message
    return message


def test_legacy_signature_verifies(image: Signed) -> None:
    push_legacy_signature(image.client, image.repo, image.digest, image.key)
    evidence = SignatureVerifier().verify(image.repo, image.digest, image.rule())
    assert [(e.format, e.signer) for e in evidence] == [("cosign-sig", str(image.key.public_path))]
    assert image.digest.replace(":", "-") + ".sig" in evidence[0].detail


def test_key_bundle_verifies(image: Signed) -> None:
    push_bundle(image.client, image.repo, image.digest,
                dsse_bundle(image.key, in_toto_statement(image.repo, image.digest)))
    evidence = SignatureVerifier().verify(image.repo, image.digest, image.rule())
    assert [(e.format, e.signer) for e in evidence] == [("bundle-key", str(image.key.public_path))]


def test_any_listed_key_may_sign_and_both_formats_count(image: Signed, tmp_path: Path) -> None:
    other = generate_key(tmp_path, "other")
    push_legacy_signature(image.client, image.repo, image.digest, image.key)
    push_bundle(image.client, image.repo, image.digest,
                dsse_bundle(image.key, in_toto_statement(image.repo, image.digest)))
    evidence = SignatureVerifier().verify(image.repo, image.digest, image.rule(other.public_path,
                                                                               image.key.public_path))
    assert sorted(e.format for e in evidence) == ["bundle-key", "cosign-sig"]


def test_unsigned_is_refused(image: Signed) -> None:
    assert "no signature found" in refusal(image)


def test_wrong_key_is_refused(image: Signed, tmp_path: Path) -> None:
    push_legacy_signature(image.client, image.repo, image.digest, image.key)
    push_bundle(image.client, image.repo, image.digest,
                dsse_bundle(image.key, in_toto_statement(image.repo, image.digest)))
    other = generate_key(tmp_path, "other")
    message = refusal(image, image.rule(other.public_path))
    assert str(other.public_path) in message
    assert "found 1 cosign signature: signature does not verify" in message
    assert "found 1 sigstore bundle: signature does not verify" in message


def test_signature_of_another_digest_under_this_tag_is_refused(image: Signed) -> None:
    push_legacy_signature(image.client, image.repo, image.other_digest, image.key, attach_to=image.digest)
    assert "signed for another digest" in refusal(image)


def test_tampered_payload_is_refused(image: Signed) -> None:
    genuine = simple_signing_payload(image.repo, image.digest)
    tampered = genuine.replace(b'"optional":null', b'"optional":{"note":"x"}')
    push_legacy_signature(image.client, image.repo, image.digest, image.key, payload=genuine,
                          pushed_payload=tampered)
    assert "signature does not verify" in refusal(image)


def test_tampered_dsse_payload_is_refused(image: Signed) -> None:
    statement = in_toto_statement(image.repo, image.other_digest)
    forged = in_toto_statement(image.repo, image.digest)
    push_bundle(image.client, image.repo, image.digest, dsse_bundle(image.key, statement, pushed_statement=forged))
    assert "sigstore bundle: signature does not verify" in refusal(image)


def test_bundle_about_another_digest_is_refused(image: Signed) -> None:
    push_bundle(image.client, image.repo, image.digest,
                dsse_bundle(image.key, in_toto_statement(image.repo, image.other_digest)))
    assert "statement is about another digest" in refusal(image)


def test_attestation_is_not_a_signature(image: Signed) -> None:
    statement = in_toto_statement(image.repo, image.digest, predicate_type="https://slsa.dev/provenance/v1")
    push_bundle(image.client, image.repo, image.digest, dsse_bundle(image.key, statement))
    assert "https://slsa.dev/provenance/v1 attestation, not a signature" in refusal(image)


def test_signature_for_another_repository_is_refused(image: Signed) -> None:
    payload = simple_signing_payload("127.0.0.1:5055/elsewhere/app", image.digest)
    push_legacy_signature(image.client, image.repo, image.digest, image.key, payload=payload)
    assert "signed for another repository (127.0.0.1:5055/elsewhere/app)" in refusal(image)


def test_signed_garbage_fails_closed(image: Signed) -> None:
    push_legacy_signature(image.client, image.repo, image.digest, image.key, payload=b"not json")
    push_bundle(image.client, image.repo, image.digest, b'{"mediaType": 7}')
    message = refusal(image)
    assert "cosign signature: payload is not JSON" in message
    assert "sigstore bundle: bundle media type 7 is not a sigstore bundle" in message


def test_keyless_bundle_needs_keyless_identities(image: Signed) -> None:
    bundle = json.loads(dsse_bundle(image.key, in_toto_statement(image.repo, image.digest)))
    bundle["verificationMaterial"] = {"certificate": {"rawBytes": base64.b64encode(b"not a cert").decode()}}
    push_bundle(image.client, image.repo, image.digest, json.dumps(bundle).encode())
    assert "keyless bundle, but the rule names no keyless identities" in refusal(image)
    keyless_rule = TrustRule(match="*", keyless=(KeylessIdentity(issuer="https://issuer", subject="me"),))
    message = refusal(image, keyless_rule)  # a broken certificate is never accepted, whichever verifier runs
    assert "found 1 sigstore bundle" in message


def test_resolve_digest_matches_the_registry(image: Signed, docker_client: docker.DockerClient) -> None:
    for tag, digest in (("v1", image.digest), ("v2", image.other_digest)):
        resolved = SignatureVerifier().resolve_digest(f"{image.repo}:{tag}")
        assert resolved == digest == docker_client.images.get_registry_data(f"{image.repo}:{tag}").id
    assert SignatureVerifier().resolve_digest(f"{image.repo}@{image.digest}") == image.digest


def test_unknown_tag_is_not_found(image: Signed) -> None:
    with pytest.raises(RegistryError) as info:
        SignatureVerifier().resolve_digest(f"{image.repo}:nope")
    assert not info.value.retryable and "not found" in str(info.value)


def test_registry_down_is_a_transient_registry_error(tmp_path: Path) -> None:
    key = generate_key(tmp_path)
    rule = TrustRule(match="*", keys=(key.public_path,))
    with pytest.raises(RegistryError) as info:
        SignatureVerifier().verify("127.0.0.1:1/edge/app", "sha256:" + "a" * 64, rule)
    assert info.value.exit_code == 4 and info.value.retryable
    assert "127.0.0.1:1" in str(info.value)
    with pytest.raises(RegistryError):
        SignatureVerifier().resolve_digest("127.0.0.1:1/edge/app:v1")
