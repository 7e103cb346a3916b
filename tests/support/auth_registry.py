"""A second loopback registry that requires a login (htpasswd, HTTP basic).

The plain test registry never challenges, and clients like @sigstore/oci only
authenticate after a ``401`` with ``WWW-Authenticate``: they cannot talk to a
registry that does not ask. Distribution accepts only bcrypt htpasswd entries,
so the file is written with the ``bcrypt`` package (a dev dependency; no
apache2-utils needed).
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt


@dataclass
class AuthRegistry:
    addr: str  # 127.0.0.1:PORT
    username: str
    password: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)



def _listening(addr: str) -> bool:
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def start_auth_registry(workdir: Path, addr: str, username: str = "edge") -> AuthRegistry:
    """Start ``docker-registry serve`` with htpasswd auth on ``addr``; wait until it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {workdir / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"auth: {{htpasswd: {{realm: gitops-edge-test, path: {htpasswd}}}}}\n"
        f"http: {{addr: '{addr}'}}\n"
    )
    log = workdir / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    reg = AuthRegistry(addr, username, password, proc, log)
    deadline = time.monotonic() + 15
    while not _listening(addr):
        if proc.poll() is not None or time.monotonic() > deadline:
            reg.stop()
            raise RuntimeError(f"htpasswd registry did not listen on {addr}: {log.read_text()[-500:]}")
        time.sleep(0.1)
    return reg
