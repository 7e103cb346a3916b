"""Bundles attached to an image by @sigstore/oci, found through the referrers tag and verified.

distribution 2.8 has no referrers API, so @sigstore/oci falls back to the
referrers tag schema: an OCI index tagged ``sha256-<hex>`` listing one artifact
manifest per bundle. This pins that shape, which image discovery consumes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import docker
import pytest
import requests

from gitops_edge.adapters.registry.keyless import verify_keyless_bundle
from gitops_edge.adapters.registry.signatures import SignatureVerifier
from gitops_edge.errors import RegistryError, TrustError
from gitops_edge.model.trust import KeylessIdentity, RegistriesConfig, TrustRule
from tests.support import keyless_producer
from tests.support.auth_registry import AuthRegistry
from tests.support.images import build_image, push

pytestmark = pytest.mark.docker

ISSUER = "https://token.actions.example"
SUBJECT = "https://git.example/acme/app/.github/workflows/release.yml@refs/heads/main"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def get(reg: AuthRegistry, path: str, accept: str) -> requests.Response:
    r = requests.get(f"http://{reg.addr}/v2/{path}", auth=(reg.username, reg.password),
                     headers={"Accept": accept}, timeout=30)
    r.raise_for_status()
    return r


def test_attached_bundles_are_found_by_referrers_tag_and_verify(
    auth_registry: AuthRegistry, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    reason = keyless_producer.missing()
    if reason:
        pytest.fail(reason)
    repo = f"{auth_registry.addr}/edge/signed"
    build_image(docker_client, repo, "v1", version="keyless-oci")
    digest = push(docker_client, f"{repo}:v1")
    manifest = get(auth_registry, f"edge/signed/manifests/{digest}", DOCKER_MANIFEST).content
    (tmp_path / "manifest").write_bytes(manifest)
    attach = {"image": repo, "digest": digest, "username": auth_registry.username,
              "password": auth_registry.password}
    base = {"issuer": ISSUER, "subject": SUBJECT, "attach": attach}
    root = keyless_producer.produce(tmp_path, [
        {**base, "out": str(tmp_path / "dsse.json"), "digest": digest, "name": repo},
        {**base, "out": str(tmp_path / "message.json"), "kind": "message", "artifact": str(tmp_path / "manifest")},
    ])

    tag = digest.replace(":", "-")
    index = get(auth_registry, f"edge/signed/manifests/{tag}", OCI_INDEX).json()
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2
    assert len(index["manifests"]) == 2
    trust = TrustRule(match="127.0.0.1:*/edge/*", keyless=(KeylessIdentity(issuer=ISSUER, subject=SUBJECT),),
                      trusted_root=root)
    contents = set()
    for desc in index["manifests"]:
        assert desc["mediaType"] == OCI_MANIFEST
        assert desc["artifactType"] == BUNDLE_TYPE
        assert "org.opencontainers.image.created" in desc["annotations"]
        contents.add(desc["annotations"]["dev.sigstore.bundle.content"])
        art = get(auth_registry, f"edge/signed/manifests/{desc['digest']}", OCI_MANIFEST).json()
        assert art["artifactType"] == BUNDLE_TYPE
        assert art["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
        assert art["subject"]["digest"] == digest
        assert art["annotations"] == desc["annotations"]
        [layer] = art["layers"]
        assert layer["mediaType"] == BUNDLE_TYPE
        bundle = get(auth_registry, f"edge/signed/blobs/{layer['digest']}", "*/*").content
        ev = verify_keyless_bundle(bundle, digest, trust)
        assert ev.signer == f"{ISSUER}: {SUBJECT}"
    assert contents == {"dsse-envelope", "message-signature"}
    (tmp_path / "shape.json").write_text(json.dumps(index, indent=2))

    # The device's own discovery: registry credentials from a docker config.json, the
    # referrers tag found and both bundles verified keyless; a wrong identity is refused.
    auth = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    config_json = tmp_path / "docker-config.json"
    config_json.write_text(json.dumps({"auths": {auth_registry.addr: {"auth": auth}}}))
    verifier = SignatureVerifier(RegistriesConfig(auth_file=config_json))
    assert verifier.resolve_digest(f"{repo}:v1") == digest
    evidence = verifier.verify(repo, digest, trust)
    assert sorted(e.format for e in evidence) == ["bundle-keyless", "bundle-keyless"]
    assert {e.signer for e in evidence} == {f"{ISSUER}: {SUBJECT}"}
    regex = replace(trust, keyless=(KeylessIdentity(issuer=ISSUER, subject_regex=r"https://git\.example/acme/.*"),))
    assert verifier.verify(repo, digest, regex)
    for wrong in (KeylessIdentity(issuer=ISSUER, subject="https://git.example/evil/x"),
                  KeylessIdentity(issuer="https://other.issuer", subject=SUBJECT)):
        with pytest.raises(TrustError) as info:
            verifier.verify(repo, digest, replace(trust, keyless=(wrong,)))
        assert info.value.exit_code == 3
    with pytest.raises(RegistryError):  # no credentials: the registry says 401
        SignatureVerifier(RegistriesConfig(auth_file=tmp_path / "none.json")).resolve_digest(f"{repo}:v1")
