"""Tiny real images from Debian's static busybox, ``docker import``-ed.

Used by ``gitops-edge demo`` (no network, no registry) and by the tests.
Each version carries its own ``/version`` file, so each has its own digest.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile

import docker

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def _applets() -> list[str]:
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and a != "busybox"]


def rootfs_tar(version: str, extra_files: dict[str, str] | None = None, *, busybox: str = BUSYBOX) -> bytes:
    """A busybox root file system; ``busybox`` may be another architecture's static binary
    (the applet list is the host's: Debian builds one busybox-static for every architecture)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(path: str) -> None:
            info = tarfile.TarInfo(path)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)

        def add_file(path: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "etc", "tmp", "var", "www", "data", "root"):
            add_dir(d)
        with open(busybox, "rb") as f:
            add_file("bin/busybox", f.read(), 0o755)
        for applet in _applets():
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file("version", version.encode() + b"\n")
        add_file("www/index.html", f"version {version}\n".encode())
        for path, content in (extra_files or {}).items():
            add_file(path.lstrip("/"), content.encode(), 0o755)
    return buf.getvalue()


# A process as PID 1 ignores SIGTERM unless it handles it; the shell's trap makes
# `docker stop` take milliseconds instead of the 10 s grace period.
SERVE = ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]


def build_image(
    client: docker.DockerClient,
    repository: str,
    tag: str,
    *,
    version: str | None = None,
    cmd: list[str] | None = None,
    healthcheck: list[str] | None = None,
    extra_files: dict[str, str] | None = None,
) -> str:
    """Import a busybox image as ``repository:tag``; returns the image id."""
    import json

    changes = [
        "ENV PATH=/bin",
        "CMD " + json.dumps(cmd or SERVE),
    ]
    if healthcheck:
        changes.append("HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD " + json.dumps(healthcheck))
    data = rootfs_tar(version or tag, extra_files)
    client.api.import_image_from_data(data, repository=repository, tag=tag, changes=changes)
    return str(client.images.get(f"{repository}:{tag}").id)  # the docker SDK is untyped


# -- multi-arch images as registries serve them (OCI image index) -------------------------

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# Debian architecture -> the OCI platform its binaries run as (index entry and image config).
DEBIAN_PLATFORMS: dict[str, dict[str, str]] = {
    "amd64": {"architecture": "amd64", "os": "linux"},
    "arm64": {"architecture": "arm64", "os": "linux", "variant": "v8"},
    "armhf": {"architecture": "arm", "os": "linux", "variant": "v7"},
}


def _sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(obj: object) -> bytes:
    import json

    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def oci_image(
    rootfs: bytes,
    platform: dict[str, str],
    *,
    cmd: list[str] | None = None,
    healthcheck: list[str] | None = None,
) -> tuple[bytes, dict[str, bytes]]:
    """One single-platform OCI image: ``(manifest, {digest: blob})`` for a root file system tar.

    The layer is gzip-compressed with a fixed timestamp, so equal inputs give
    equal digests; the config carries the platform (``architecture``, ``os``,
    ``variant``) the engine checks, unlike what ``docker import`` records.
    """
    import gzip

    layer = gzip.compress(rootfs, compresslevel=6, mtime=0)
    container_config: dict[str, object] = {"Env": ["PATH=/bin"], "Cmd": cmd or SERVE}
    if healthcheck:
        container_config["Healthcheck"] = {"Test": ["CMD", *healthcheck], "Interval": 1_000_000_000,
                                           "Timeout": 2_000_000_000, "Retries": 2}
    config = _canonical({
        **platform,
        "created": "1970-01-01T00:00:00Z",
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [_sha256(rootfs)]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "gitops-edge tinyimage"}],
    })
    manifest = _canonical({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _sha256(layer), "size": len(layer)}],
    })
    return manifest, {_sha256(config): config, _sha256(layer): layer}


def oci_index(manifests: list[tuple[bytes, dict[str, str]]]) -> bytes:
    """An OCI image index over ``(manifest, platform)`` pairs, in the order given."""
    return _canonical({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": _sha256(m), "size": len(m), "platform": dict(p)}
            for m, p in manifests
        ],
    })
