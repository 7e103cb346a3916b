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


def rootfs_tar(version: str, extra_files: dict[str, str] | None = None) -> bytes:
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
        with open(BUSYBOX, "rb") as f:
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
