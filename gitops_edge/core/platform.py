"""OCI platforms (``linux/arm64``, ``linux/arm/v7``): parsing, normalizing, choosing.

A device runs one platform; a multi-arch image (an OCI image index or Docker
manifest list) offers several. The names follow the OCI image spec (GOOS /
GOARCH, plus a variant for ARM) and are normalized the way containerd does,
so ``arm64``, ``aarch64``, ``linux/arm64/v8`` and ``linux/arm64`` are one
platform, as are ``armhf``, ``arm`` and ``linux/arm/v7``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Architecture spellings of uname, Debian and Docker, to GOARCH (and a variant).
_ARCH_ALIASES: Mapping[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"), "armv7l": ("arm", "v7"), "armv7": ("arm", "v7"),
    "armel": ("arm", "v6"), "armv6l": ("arm", "v6"), "armv6": ("arm", "v6"),
    "armv5l": ("arm", "v5"), "arm": ("arm", ""),
    "i386": ("386", ""), "i686": ("386", ""), "386": ("386", ""),
    "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}
_OS = frozenset({"linux", "windows", "freebsd", "darwin"})


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


def normalize(os: str, architecture: str, variant: str = "") -> Platform:
    """containerd's normal form: arm64's v8 and amd64's v1 are implied, plain arm means v7."""
    os, architecture, variant = os.strip().lower(), architecture.strip().lower(), variant.strip().lower()
    arch, implied = _ARCH_ALIASES.get(architecture, (architecture, ""))
    variant = variant or implied
    if (arch == "arm64" and variant in ("v8", "8")) or (arch == "amd64" and variant == "v1"):
        variant = ""
    elif arch == "arm":
        variant = variant if variant.startswith("v") else (f"v{variant}" if variant else "v7")
    return Platform(os or "linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` or a bare architecture (``arm64``, ``armhf``); ``ValueError`` if malformed."""
    parts = [p for p in text.strip().split("/")]
    if not parts or any(not p for p in parts) or len(parts) > 3:
        raise ValueError(f"{text!r} is not a platform (os/arch[/variant], e.g. linux/arm64 or linux/arm/v7)")
    if len(parts) == 1:
        parts = ["linux", parts[0]]
    if parts[0].lower() not in _OS:
        raise ValueError(f"{text!r}: unknown operating system {parts[0]!r} (expected linux/ARCH[/VARIANT])")
    if parts[1].lower() not in _ARCH_ALIASES:
        raise ValueError(f"{text!r}: unknown architecture {parts[1]!r}")
    return normalize(*parts)


def from_machine(os: str, machine: str) -> Platform:
    """The platform of a host from ``uname -m`` (what ``docker info`` reports as Architecture)."""
    return normalize(os or "linux", machine)


def _arm_level(variant: str) -> int:
    try:
        return int(variant.removeprefix("v"))
    except ValueError:
        return 0


def choose(wanted: Platform, offered: Iterable[Platform]) -> Platform | None:
    """The offered platform ``wanted`` runs best: an exact match, else (ARM) the newest older variant.

    An ARMv7 device runs ARMv6 and ARMv5 code, never the reverse; other
    architectures must match exactly.
    """
    offered = list(offered)
    if wanted in offered:
        return wanted
    if wanted.architecture != "arm":
        return None
    older = [p for p in offered if p.os == wanted.os and p.architecture == "arm"
             and 0 < _arm_level(p.variant) < _arm_level(wanted.variant)]
    return max(older, key=lambda p: _arm_level(p.variant)) if older else None


def from_descriptor(platform: Mapping[str, object]) -> Platform:
    """A platform object of an index entry or image config (``architecture``, ``os``, ``variant``)."""
    return normalize(str(platform.get("os") or ""), str(platform.get("architecture") or ""),
                     str(platform.get("variant") or ""))


def describe(platforms: Iterable[Platform]) -> str:
    names = sorted({str(p) for p in platforms})
    return ", ".join(names) if names else "no platform"
