"""Issue 4 through `gitops-edge sync`: signed images only, pinned by digest;
a device security policy and signed commits that the repo cannot override."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from gitops_edge.adapters.registry.client import RegistryClient
from gitops_edge.demo import tinyimage
from tests.conftest import git
from tests.integration.agent_harness import Device, assert_clean_failure
from tests.support.cosign_signer import generate_key, push_legacy_signature
from tests.support.images import push

SERVE = json.dumps(tinyimage.SERVE)  # a YAML flow sequence for `command:`


def compose(image: str, extra: str = "") -> str:
    return f"services:\n  web:\n    image: {image}\n    command: {SERVE}\n{extra}"


@pytest.fixture
def signed_repo(docker_client: docker.DockerClient, registry: str, test_images: dict[str, str],
                tmp_path: Path) -> tuple[str, dict[str, str], Path]:
    """A fresh repository with v1 (signed) and v2 (unsigned); returns (repo, digests, public key)."""
    repo = f"{registry}/trust/{uuid.uuid4().hex[:10]}/app"
    digests = {}
    for v in ("v1", "v2"):
        docker_client.images.get(test_images[v]).tag(repo, v)
        digests[v] = push(docker_client, f"{repo}:{v}")
    key = generate_key(tmp_path, "acme")
    push_legacy_signature(RegistryClient(), repo, digests["v1"], key)
    return repo, digests, key.public_path


def web(dev: Device, s: str) -> docker.models.containers.Container:
    return dev.containers(s)[f"{s}-web-1"]


def test_only_signed_images_run_by_their_verified_digest(
    device: Device, stack_name: str, signed_repo: tuple[str, dict[str, str], Path], test_images: dict[str, str]
) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    repo, digests, key = signed_repo
    device.extra_config = f"trust:\n  default: deny\n  images:\n    - match: '{repo}'\n      keys: ['{key}']\n"
    device.commit({"README.md": "d\n", f"{s}/compose.yaml": compose(f"{repo}:v1")})

    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    c = web(device, s)
    assert c.attrs["Config"]["Image"] == f"{repo}@{digests['v1']}"  # created from the verified digest
    assert c.labels["io.gitops-edge.image"] == f"{repo}@{digests['v1']}"
    before = c.id
    assert "images verified" in device.status()["trust"]

    # unsigned v2: refused, nothing changes
    device.commit({f"{s}/compose.yaml": compose(f"{repo}:v2")}, "unsigned")
    out = device.cli("sync")
    assert_clean_failure(out, 3, f"{repo}:v2", f"rule '{repo}'", "no signature")
    assert web(device, s).id == before and web(device, s).status == "running"

    # an image no rule matches, under default deny
    device.commit({f"{s}/compose.yaml": compose(test_images["v1"])}, "unmatched")
    out = device.cli("sync")
    assert_clean_failure(out, 3, "no trust rule matches", "trust.default is deny")
    assert web(device, s).id == before

    # by digest: the same verified content, so nothing to do
    device.commit({f"{s}/compose.yaml": compose(f"{repo}@{digests['v1']}")}, "by digest")
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert web(device, s).id == before

    # `verify IMAGE` prints the evidence, or refuses with exit 3
    ok = device.cli("verify", f"{repo}:v1")
    assert ok.returncode == 0, ok.stderr
    assert "cosign-sig" in ok.stdout and str(key) in ok.stdout and digests["v1"] in ok.stdout
    bad = device.cli("verify", f"{repo}:v2")
    assert_clean_failure(bad, 3, "no signature")
    as_json = json.loads(device.cli("verify", "--json", f"{repo}:v1").stdout)
    assert as_json["allowed"] is True and as_json["digest"] == digests["v1"]


def test_default_security_policy_refuses_takeover(
    device: Device, stack_name: str, test_images: dict[str, str]
) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.commit({"README.md": "d\n", f"{s}/compose.yaml": compose(test_images["v1"])})
    assert device.cli("sync").returncode == 0
    before = web(device, s).id
    for extra, needle in (
        ("    privileged: true\n", "privileged"),
        ("    volumes: ['/:/host']\n", "bind mount of /"),
        ("    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n", "docker.sock"),
        ("    network_mode: host\n", "host"),
        ("    cap_add: [SYS_ADMIN]\n", "SYS_ADMIN"),
    ):
        device.commit({f"{s}/compose.yaml": compose(test_images["v1"], extra)}, needle)
        out = device.cli("sync")
        assert_clean_failure(out, 3, f"devices/d1/{s}/compose.yaml:", needle, "allow with security.")
        assert web(device, s).id == before


def test_unsigned_commits_and_rewinds_are_refused(
    device: Device, stack_name: str, test_images: dict[str, str], tmp_path: Path
) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    key = tmp_path / "signer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"ops@example.com {(tmp_path / 'signer.pub').read_text()}")
    repo = device.repo
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingkey", str(key))
    git(repo, "config", "commit.gpgsign", "true")
    device.source_extra = f", verify: {{mode: ssh, allowed_signers: '{signers}'}}"
    good1 = device.commit({"README.md": "d\n", f"{s}/compose.yaml": compose(test_images["v1"])}, "signed v1")
    good2 = device.commit({f"{s}/compose.yaml": compose(test_images["v2"])}, "signed v2")
    assert "verify: {mode: ssh" in device.config.read_text()

    def sync() -> subprocess.CompletedProcess[str]:
        return device.cli("sync")

    out = sync()
    assert out.returncode == 0, out.stderr
    assert web(device, s).labels["io.gitops-edge.revision"] == good2

    git(repo, "config", "commit.gpgsign", "false")
    unsigned = device.commit({f"{s}/compose.yaml": compose(test_images["v1"])}, "unsigned")
    out = sync()
    assert_clean_failure(out, 3, unsigned[:12], "not signed")
    assert web(device, s).labels["io.gitops-edge.revision"] == good2

    git(repo, "reset", "-q", "--hard", good1)  # a force-push back to an older signed commit
    out = sync()
    assert_clean_failure(out, 3, "does not descend", "allow_rewind")
    assert web(device, s).labels["io.gitops-edge.revision"] == good2
