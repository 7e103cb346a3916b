"""Platform names: every spelling a device, Debian or a registry uses means one platform."""

from __future__ import annotations

import pytest

from gitops_edge.core.platform import Platform, choose, describe, from_descriptor, from_machine, parse_platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
ARMV7 = Platform("linux", "arm", "v7")
ARMV6 = Platform("linux", "arm", "v6")


@pytest.mark.parametrize(("text", "want"), [
    ("linux/amd64", AMD64), ("amd64", AMD64), ("x86_64", AMD64), ("linux/amd64/v1", AMD64),
    ("linux/arm64", ARM64), ("linux/arm64/v8", ARM64), ("aarch64", ARM64), ("LINUX/ARM64", ARM64),
    ("linux/arm/v7", ARMV7), ("linux/arm", ARMV7), ("armhf", ARMV7), ("linux/arm/7", ARMV7),
    ("linux/arm/v6", ARMV6), ("armel", ARMV6),
])
def test_spellings_normalize_to_one_platform(text: str, want: Platform) -> None:
    assert parse_platform(text) == want


@pytest.mark.parametrize("text", ["", "linux/", "/arm64", "linux/arm/v7/x", "plan9/arm64", "linux/z80"])
def test_malformed_platforms_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"linux/|platform|architecture"):
        parse_platform(text)


def test_str_is_the_oci_form() -> None:
    assert [str(p) for p in (AMD64, ARM64, ARMV7)] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]


def test_machine_names_of_docker_info() -> None:
    assert from_machine("linux", "x86_64") == AMD64
    assert from_machine("linux", "aarch64") == ARM64
    assert from_machine("linux", "armv7l") == ARMV7


def test_index_descriptors_as_registries_write_them() -> None:
    assert from_descriptor({"architecture": "arm64", "os": "linux", "variant": "v8"}) == ARM64
    assert from_descriptor({"architecture": "arm", "os": "linux", "variant": "v7"}) == ARMV7
    assert from_descriptor({"architecture": "amd64", "os": "linux"}) == AMD64


def test_choose_exact_else_older_arm_never_newer_or_foreign() -> None:
    offered = [AMD64, ARM64, ARMV6]
    assert choose(ARM64, offered) == ARM64
    assert choose(ARMV7, offered) == ARMV6  # an ARMv7 core runs ARMv6 code
    assert choose(ARMV6, [ARMV7]) is None  # never the reverse
    assert choose(ARM64, [AMD64, ARMV7]) is None  # 64-bit ARM images only: no fallback across architectures
    assert choose(AMD64, []) is None
    assert describe([ARMV7, AMD64, AMD64]) == "linux/amd64, linux/arm/v7"
