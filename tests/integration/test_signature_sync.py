"""Syncs of images carrying the formats real tools write, through `gitops-edge sync` and `verify --json`.

A mirror: the image is copied to the loopback registry under another name
than it was signed for. Its skopeo-style signature names
``registry.example/team/app:v1`` (a tag in the docker-reference); the device
runs it only with a ``signed_identity`` remap from the mirror prefix.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import docker

from gitops_edge.adapters.registry.client import RegistryClient
from gitops_edge.demo import tinyimage
from tests.integration.agent_harness import Device, assert_clean_failure
from tests.support import keyless_producer
from tests.support.cosign_signer import generate_key, push_bundle, push_legacy_signature
from tests.support.images import push

SERVE = json.dumps(tinyimage.SERVE)
SIGNED_NAME = "registry.example/team/app"


def skopeo_payload(reference: str, digest: str) -> bytes:
    """What containers/image writes when podman/skopeo sign: a tagged reference and a creator."""
    return json.dumps({"critical": {"identity": {"docker-reference": reference},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": {"creator": "containers/image 5.21.2-dev", "timestamp": 1657296609}}).encode()


def test_mirrored_image_runs_only_with_a_remap(device: Device, stack_name: str, registry: str,
                                               docker_client: docker.DockerClient, test_images: dict[str, str],
                                               tmp_path: Path) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    mirror = f"{registry}/mirror-{uuid.uuid4().hex[:10]}"
    repo = f"{mirror}/team/app"
    docker_client.images.get(test_images["v1"]).tag(repo, "v1")
    digest = push(docker_client, f"{repo}:v1")
    key = generate_key(tmp_path, "release")
    push_legacy_signature(RegistryClient(), repo, digest, key, payload=skopeo_payload(f"{SIGNED_NAME}:v1", digest))
    rule = f"    - match: '{mirror}/*'\n      keys: ['{key.public_path}']\n"
    device.extra_config = f"trust:\n  default: deny\n  images:\n{rule}"
    device.commit({"README.md": "d\n",
                   f"{s}/compose.yaml": f"services:\n  web:\n    image: {repo}:v1\n    command: {SERVE}\n"})

    out = device.cli("sync")
    assert_clean_failure(out, 3, f"signed for another repository ({SIGNED_NAME}:v1)")
    assert device.containers(s) == {}

    device.extra_config += f"      signed_identity: {{prefix: '{mirror}', signed_prefix: registry.example}}\n"
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    web = device.containers(s)[f"{s}-web-1"]
    assert web.attrs["Config"]["Image"] == f"{repo}@{digest}"

    verdict = json.loads(device.cli("verify", "--json", f"{repo}:v1").stdout)
    assert verdict["allowed"] is True and verdict["digest"] == digest
    (ev,) = verdict["evidence"]
    assert ev["format"] == "cosign-sig" and ev["identity"] == str(key.public_path)
    assert ev["log"] is None and ev["time_source"] is None  # a plain key signature: no log, no time needed

    # exact (and no remap): the signed name and tag must be the reference itself, refused here
    device.extra_config = f"trust:\n  default: deny\n  images:\n{rule}      signed_identity: exact\n"
    bad = device.cli("verify", "--json", f"{repo}@{digest}")
    assert bad.returncode == 3
    refusal = json.loads(bad.stdout)
    assert refusal["allowed"] is False and refusal["retryable"] is False
    assert "not exactly" in refusal["reason"]


def test_keyless_bundles_sync_and_attestations_do_not(device: Device, stack_name: str, registry: str,
                                                      docker_client: docker.DockerClient,
                                                      test_images: dict[str, str], tmp_path: Path) -> None:
    """sigstore-js bundles (mock Fulcio/Rekor/TSA): a signature runs; a provenance attestation is no signature."""
    reason = keyless_producer.missing()
    if reason:
        raise AssertionError(reason)
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    repo = f"{registry}/ksync-{uuid.uuid4().hex[:10]}/app"
    digests = {}
    for v in ("v1", "v2"):
        docker_client.images.get(test_images[v]).tag(repo, v)
        digests[v] = push(docker_client, f"{repo}:{v}")
    issuer, subject = "https://token.actions.example", "https://git.example/acme/app/release.yml@refs/tags/v1"
    job = {"issuer": issuer, "subject": subject, "name": repo, "tsa": True}
    root = keyless_producer.produce(tmp_path / "sigstore", [
        {**job, "out": str(tmp_path / "v1.json"), "digest": digests["v1"]},
        {**job, "out": str(tmp_path / "v2.json"), "digest": digests["v2"],
         "predicateType": "https://slsa.dev/provenance/v1"},
    ])
    client = RegistryClient()
    for v in ("v1", "v2"):
        push_bundle(client, repo, digests[v], (tmp_path / f"{v}.json").read_bytes())
    device.extra_config = (f"trust:\n  default: deny\n  images:\n    - match: '{repo}'\n"
                           f"      keyless: [{{issuer: '{issuer}', subject: '{subject}'}}]\n"
                           f"      trusted_root: '{root}'\n")
    device.commit({"README.md": "d\n",
                   f"{s}/compose.yaml": f"services:\n  web:\n    image: {repo}:v1\n    command: {SERVE}\n"})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert device.containers(s)[f"{s}-web-1"].attrs["Config"]["Image"] == f"{repo}@{digests['v1']}"
    verdict = json.loads(device.cli("verify", "--json", f"{repo}:v1").stdout)
    (ev,) = verdict["evidence"]
    assert ev["format"] == "bundle-keyless" and ev["identity"] == f"{issuer}: {subject}"
    assert ev["log"].startswith("rekor v1 (dsse 0.0.1) index")
    assert "timestamp authority" in ev["time_source"] and "transparency log" in ev["time_source"]

    device.commit({f"{s}/compose.yaml": f"services:\n  web:\n    image: {repo}:v2\n    command: {SERVE}\n"})
    out = device.cli("sync")
    assert_clean_failure(out, 3, "https://slsa.dev/provenance/v1 attestation, not a signature")
    assert device.containers(s)[f"{s}-web-1"].attrs["Config"]["Image"] == f"{repo}@{digests['v1']}"
