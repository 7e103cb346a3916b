"""Pure checks of the signature formats: PAE, cosign payloads, in-toto statements, bundles."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from gitops_edge.adapters.registry.signature_formats import (
    Envelope,
    Rejected,
    check_simple_signing,
    check_statement,
    legacy_tag,
    pae,
    parse_bundle,
    parse_envelope,
    referrers_tag,
)
from gitops_edge.model.trust import SignedIdentity

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def payload(**critical: object) -> bytes:
    doc = {"identity": {"docker-reference": "127.0.0.1:5055/edge/app"},
           "image": {"docker-manifest-digest": DIGEST}, "type": "cosign container image signature"}
    doc.update(critical)
    return json.dumps({"critical": doc, "optional": None}).encode()


def test_pae_matches_the_dsse_spec_example() -> None:
    # the DSSE protocol document's worked example
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_tags() -> None:
    assert legacy_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"
    assert referrers_tag(DIGEST) == "sha256-" + "ab" * 32


def test_good_payload_passes() -> None:
    check_simple_signing(payload(), "127.0.0.1:5055/edge/app", DIGEST)


@pytest.mark.parametrize("repository, reference", [
    ("nginx", "index.docker.io/library/nginx"),
    ("docker.io/library/nginx", "index.docker.io/library/nginx"),
    ("acme/app", "index.docker.io/acme/app"),
])
def test_payload_accepts_cosigns_spelling_of_hub_names(repository: str, reference: str) -> None:
    check_simple_signing(payload(identity={"docker-reference": reference}), repository, DIGEST)


@pytest.mark.parametrize("critical, reason", [
    ({"image": {"docker-manifest-digest": OTHER}}, "signed for another digest"),
    ({"identity": {"docker-reference": "127.0.0.1:5055/other"}}, "signed for another repository"),
    ({"identity": {"docker-reference": "127.0.0.1:5055/other:v1"}}, "signed for another repository"),
    ({"identity": {"docker-reference": f"127.0.0.1:5055/edge/app@{OTHER}"}}, "names another digest"),
    ({"type": "something else"}, "not a cosign image signature"),
    ({"image": "sha256"}, "no docker-manifest-digest"),
    ({"identity": None}, "no docker-reference"),
])
def test_payload_mismatches_are_rejected(critical: dict[str, object], reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        check_simple_signing(payload(**critical), "127.0.0.1:5055/edge/app", DIGEST)


def test_a_tag_in_the_signed_reference_is_not_part_of_the_repository() -> None:
    """skopeo and podman sign ``repo:tag``: under the default (repository) identity any tag matches."""
    check_simple_signing(payload(identity={"docker-reference": "127.0.0.1:5055/edge/app:v1"}),
                         "127.0.0.1:5055/edge/app", DIGEST)
    check_simple_signing(payload(identity={"docker-reference": "nginx:1.27"}), "docker.io/library/nginx", DIGEST)


@pytest.mark.parametrize("reference, tag, ok", [
    ("127.0.0.1:5055/edge/app:v1", "v1", True),
    ("127.0.0.1:5055/edge/app:v1", "v2", False),
    ("127.0.0.1:5055/edge/app", "v1", False),  # cosign's untagged reference is not exact
    (f"127.0.0.1:5055/edge/app@{DIGEST}", None, True),
    ("127.0.0.1:5055/edge/app:v1", None, False),
])
def test_exact_identity_compares_tag_or_digest(reference: str, tag: str | None, ok: bool) -> None:
    doc = payload(identity={"docker-reference": reference})
    exact = SignedIdentity(mode="exact")
    if ok:
        check_simple_signing(doc, "127.0.0.1:5055/edge/app", DIGEST, exact, tag)
    else:
        with pytest.raises(Rejected, match="not exactly"):
            check_simple_signing(doc, "127.0.0.1:5055/edge/app", DIGEST, exact, tag)


@pytest.mark.parametrize("repository, ok", [
    ("127.0.0.1:5055/mirror/team/app", True),
    ("127.0.0.1:5055/mirror/team/other", False),
    ("127.0.0.1:5055/mirrored/team/app", False),  # a prefix ends at a path boundary
    ("registry.example/team/app", True),  # the signed name itself still matches
])
def test_remap_identity_maps_the_mirror_prefix(repository: str, ok: bool) -> None:
    doc = payload(identity={"docker-reference": "registry.example/team/app:v3"})
    remap = SignedIdentity(mode="remap", prefix="127.0.0.1:5055/mirror", signed_prefix="registry.example")
    if ok:
        check_simple_signing(doc, repository, DIGEST, remap)
    else:
        with pytest.raises(Rejected, match="another repository"):
            check_simple_signing(doc, repository, DIGEST, remap)


@pytest.mark.parametrize("raw, reason", [
    (b"not json", "not JSON"), (b"[]", "not a JSON object"), (b'{"critical": 1}', "no critical section"),
    (b"\xff\xfe", "not JSON"),
])
def test_malformed_payloads_are_rejected(raw: bytes, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        check_simple_signing(raw, "127.0.0.1:5055/edge/app", DIGEST)


def statement(**fields: object) -> Envelope:
    doc: dict[str, object] = {"_type": "https://in-toto.io/Statement/v1",
                              "subject": [{"name": "x", "digest": {"sha256": "ab" * 32}}],
                              "predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {}}
    doc.update(fields)
    return Envelope("application/vnd.in-toto+json", json.dumps(doc).encode(), (b"sig",))


def test_statement_naming_the_digest_passes() -> None:
    assert check_statement(statement(), DIGEST) == "https://sigstore.dev/cosign/sign/v1"
    two = statement(subject=[{"digest": {"sha256": "cd" * 32}}, {"digest": {"sha256": "ab" * 32}}])
    assert check_statement(two, DIGEST)


@pytest.mark.parametrize("fields, reason", [
    ({"subject": [{"digest": {"sha256": "cd" * 32}}]}, "about another digest"),
    ({"subject": [{"digest": {"sha512": "ab" * 32}}]}, "about another digest"),
    ({"subject": "x"}, "no subject list"),
    ({"subject": [1, None]}, "about another digest"),
    ({"_type": "https://example.com/Other"}, "unknown statement type"),
])
def test_statement_mismatches_are_rejected(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        check_statement(statement(**fields), DIGEST)


def test_statement_needs_the_in_toto_payload_type() -> None:
    with pytest.raises(Rejected, match="not an in-toto statement"):
        check_statement(Envelope("text/plain", statement().payload, ()), DIGEST)


def test_envelope_parsing_fails_closed() -> None:
    good = {"payloadType": "t", "payload": base64.b64encode(b"x").decode(), "signatures": [{"sig": "AAAA"}]}
    assert parse_envelope(good).payload == b"x"
    for bad, reason in [(None, "no DSSE envelope"), ({**good, "payloadType": 1}, "no payloadType"),
                        ({**good, "payload": "%%%"}, "not base64"), ({**good, "signatures": []}, "no signatures"),
                        ({**good, "signatures": ["x"]}, "DSSE signature missing")]:
        with pytest.raises(Rejected, match=reason):
            parse_envelope(bad)


def test_bundle_classification() -> None:
    base = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": {}}
    key = parse_bundle(json.dumps({**base, "verificationMaterial": {"publicKey": {"hint": "x"}}}).encode())
    assert not key.keyless and key.envelope == {}
    for material in ({"certificate": {}}, {"x509CertificateChain": {}}):
        assert parse_bundle(json.dumps({**base, "verificationMaterial": material}).encode()).keyless
    older = {**base, "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
             "verificationMaterial": {"certificate": {}}}
    assert parse_bundle(json.dumps(older).encode()).keyless
    for bad, reason in [({**base}, "no verificationMaterial"), ({**base, "mediaType": "x"}, "not a sigstore bundle"),
                        ({**base, "verificationMaterial": {}}, "neither a certificate nor a public key")]:
        with pytest.raises(Rejected, match=reason):
            parse_bundle(json.dumps(bad).encode())


def test_importing_the_verifier_does_not_load_cryptography() -> None:
    code = ("import sys, gitops_edge.adapters.registry.signatures, gitops_edge.adapters.registry.client; "
            "print('cryptography' in sys.modules, 'sigstore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]
