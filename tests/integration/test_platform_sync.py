"""The agent runs the device's platform of a multi-arch image, on the real engine.

A sync on this (amd64) engine runs the amd64 variant; ``device.platform``
names another one, which the engine pulls from the same index and runs under
QEMU; an image without the device's platform fails the sync with a located
error before anything changes. With a trust policy the signature is checked
on the digest the compose file names, as cosign and sigstore's policy-controller
do: a tag of a multi-arch image means its index (what ``cosign sign`` signs by
default), a platform-manifest digest means that manifest (``cosign sign
--recursive`` signs those too).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from gitops_edge.adapters.registry.client import RegistryClient
from tests.integration.agent_harness import Device, assert_clean_failure
from tests.support.cosign_signer import generate_key, push_legacy_signature
from tests.support.images import MultiArch, push_multiarch

pytestmark = pytest.mark.docker

IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def _image(registry: str, version: str, arches: tuple[str, ...] = ("amd64", "arm64", "armhf")) -> MultiArch:
    return push_multiarch(f"{registry}/edge/plat-{uuid.uuid4().hex[:8]}:{version}", version=version, arches=arches,
                          cmd=IDLE)


def _compose(image: str) -> str:
    return f"services:\n  app:\n    image: {image}\n"


def _arch_of(device: Device, stack: str) -> list[str]:
    (c,) = device.containers(stack).values()
    code, out = c.exec_run(["sh", "-c", "uname -m; cat /arch /version"])
    assert code == 0, out
    return out.decode().split()


def test_sync_runs_the_engines_platform_by_default(device: Device, registry: str, stack_name: str) -> None:
    device.cleanup.append(stack_name)  # type: ignore[attr-defined]
    img = _image(registry, "p1")
    device.commit({f"{stack_name}/compose.yaml": _compose(img.ref)})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert _arch_of(device, stack_name) == ["x86_64", "amd64", "p1"]
    (c,) = device.containers(stack_name).values()
    # Pinned to the platform's manifest, chosen from the index the tag resolves to.
    assert c.attrs["Config"]["Image"] == f"{img.repository}@{img.manifests['linux/amd64']}"


def test_device_platform_chooses_the_arm64_variant_and_a_missing_platform_changes_nothing(
    device: Device, registry: str, stack_name: str,
) -> None:
    device.cleanup.append(stack_name)  # type: ignore[attr-defined]
    device.device_extra = ", platform: linux/arm64"
    img = _image(registry, "p1")
    device.commit({f"{stack_name}/compose.yaml": _compose(img.ref)})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert _arch_of(device, stack_name) == ["aarch64", "arm64", "p1"]
    before = {n: c.id for n, c in device.containers(stack_name).items()}

    amd_only = _image(registry, "p2", arches=("amd64", "armhf"))
    device.commit({f"{stack_name}/compose.yaml": _compose(amd_only.ref)})
    out = device.cli("sync")
    assert_clean_failure(
        out, 2,
        f"devices/d1/{stack_name}/compose.yaml: services.app.image: image {amd_only.ref} has no linux/arm64 variant "
        "(it offers linux/amd64, linux/arm/v7)",
    )
    assert {n: c.id for n, c in device.containers(stack_name).items()} == before  # nothing changed
    assert _arch_of(device, stack_name) == ["aarch64", "arm64", "p1"]


def test_signatures_are_checked_on_the_digest_the_compose_file_names(
    device: Device, registry: str, stack_name: str, tmp_path: Path,
) -> None:
    device.cleanup.append(stack_name)  # type: ignore[attr-defined]
    device.device_extra = ", platform: linux/arm/v7"
    img = _image(registry, "s1")
    key = generate_key(tmp_path, "acme")
    push_legacy_signature(RegistryClient(), img.repository, img.index, key)  # `cosign sign IMAGE:TAG`: the index
    device.extra_config = (f"trust:\n  default: deny\n  images:\n    - match: '{img.repository}'\n"
                           f"      keys: ['{key.public_path}']\n")
    # The tag resolves to the signed index; the engine pulls the device's platform from it.
    device.commit({f"{stack_name}/compose.yaml": _compose(img.ref)})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert _arch_of(device, stack_name) == ["armv7l", "armhf", "s1"]

    # A platform manifest named by digest is its own subject: unsigned, it is refused...
    arm64 = img.manifests["linux/arm64/v8"]
    device.device_extra = ", platform: linux/arm64"
    device.commit({f"{stack_name}/compose.yaml": _compose(f"{img.repository}@{arm64}")})
    out = device.cli("sync")
    assert_clean_failure(out, 3, arm64)
    assert _arch_of(device, stack_name) == ["armv7l", "armhf", "s1"]
    # ...and accepted once signed (what `cosign sign --recursive` adds).
    push_legacy_signature(RegistryClient(), img.repository, arm64, key)
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert _arch_of(device, stack_name) == ["aarch64", "arm64", "s1"]


def test_two_platforms_of_one_index_on_one_engine_do_not_collide(
    device: Device, registry: str, stack_name: str, tmp_path: Path,
) -> None:
    """The engine keeps one image per ``repo@digest``: pinning the index digest for two platforms
    would fail the second pull ("Cannot overwrite digest"); platform manifests do not collide."""
    other = Device(repo=device.repo, workdir=tmp_path / "other", client=device.client, path="devices/d2",
                   device_extra=", platform: linux/arm64")
    other.workdir.mkdir()
    device.cleanup.extend([stack_name, stack_name + "-b"])  # type: ignore[attr-defined]
    img = _image(registry, "c1")
    device.commit({f"{stack_name}/compose.yaml": _compose(img.ref)})
    other.commit({f"{stack_name}-b/compose.yaml": _compose(img.ref)})
    for d in (device, other, device, other):  # and again: the no-change polls must hold too
        out = d.cli("sync")
        assert out.returncode == 0, out.stderr
    assert _arch_of(device, stack_name) == ["x86_64", "amd64", "c1"]
    assert _arch_of(other, stack_name + "-b") == ["aarch64", "arm64", "c1"]


def test_a_services_platform_key_chooses_its_variant_and_a_bad_one_is_located(
    device: Device, registry: str, stack_name: str,
) -> None:
    device.cleanup.append(stack_name)  # type: ignore[attr-defined]
    img = _image(registry, "k1", arches=("amd64", "arm64"))
    device.commit({f"{stack_name}/compose.yaml": _compose(img.ref) + "    platform: linux/arm64\n"})
    out = device.cli("sync")
    assert out.returncode == 0, out.stderr
    assert _arch_of(device, stack_name) == ["aarch64", "arm64", "k1"]  # on this amd64 engine, by the compose key
    device.commit({f"{stack_name}/compose.yaml": _compose(img.ref) + "    platform: linux/z80\n"})
    assert_clean_failure(device.cli("sync"), 2,
                         f"devices/d1/{stack_name}/compose.yaml: services.app.platform: 'linux/z80': unknown "
                         "architecture 'z80'")
    assert _arch_of(device, stack_name) == ["aarch64", "arm64", "k1"]
