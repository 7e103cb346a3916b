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
from tests.support.cosign_signer import generate_key, push_legacy_signature
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
