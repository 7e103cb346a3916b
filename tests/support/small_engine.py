"""A second, private Docker engine whose data root is a small tmpfs: the full-disk bench.

Its own dockerd (and containerd) with its own socket, data root and exec root,
its own bridge interface and no iptables rules, so it cannot disturb the shared engine.
(Not ``--bridge=none``: a dockerd started so deletes the interface ``docker0`` on start,
which is the shared engine's default bridge: every later container on it fails.)
Containers on it should use ``network_mode: none``. It pulls from the loopback
registry like the shared engine. Stopped, and its tmpfs unmounted, on exit.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker


@contextmanager
def small_engine(size_mb: int = 64) -> Iterator[tuple[str, Path]]:
    """Yields (DOCKER_HOST URL, data root) of a fresh engine on a ``size_mb`` tmpfs."""
    if shutil.which("dockerd") is None:
        raise AssertionError("dockerd is not installed; run scripts/test-bench start")
    base = Path(tempfile.mkdtemp(prefix="ge-eng-", dir="/tmp"))  # short: unix socket paths are limited
    root, exec_root, sock = base / "root", base / "exec", base / "docker.sock"
    root.mkdir()
    exec_root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(root)], check=True, timeout=30)
    bridge = f"gesm{base.name[-8:]}"[:15]  # an interface of its own (IFNAMSIZ 16)
    for cmd in (["ip", "link", "add", bridge, "type", "bridge"],
                ["ip", "addr", "add", "10.231.0.1/24", "dev", bridge],
                ["ip", "link", "set", bridge, "up"]):
        subprocess.run(cmd, check=True, timeout=30)
    log = (base / "dockerd.log").open("w")
    proc = subprocess.Popen(
        ["dockerd", "--data-root", str(root), "--exec-root", str(exec_root), "--pidfile", str(base / "pid"),
         "-H", f"unix://{sock}", f"--bridge={bridge}", "--iptables=false", "--ip6tables=false",
         "--storage-driver", "overlay2"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client = docker.DockerClient(base_url=url, timeout=10)
                client.ping()
                client.close()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"the small engine did not start:\n{(base / 'dockerd.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.3)
        yield url, root
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["umount", "-l", str(root)], check=False, timeout=30)
        subprocess.run(["ip", "link", "del", bridge], check=False, timeout=30)
        shutil.rmtree(base, ignore_errors=True)
