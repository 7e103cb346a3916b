"""A real Mosquitto broker on loopback for the MQTT fleet-status tests."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.net import free_port


class Mosquitto:
    """``mosquitto -c <conf>``: 127.0.0.1 only, anonymous, no persistence; restartable on its port."""

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.workdir = workdir
        self.extra_conf = extra_conf  # more mosquitto.conf lines, e.g. "sys_interval 1\n"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        self.log = workdir / f"mosquitto-{self.port}.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def base_conf(self) -> str:
        return f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed (scripts/bootstrap installs it)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.base_conf() + "persistence false\nlog_dest stderr\n"
                             f"user {getpass.getuser()}\n" + self.extra_conf)  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=out, stderr=out)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class SecureMosquitto(Mosquitto):
    """TLS only (``mqtts://``): a client certificate from ``ca`` is required, and a username and
    password from ``passwords`` (user -> password); ``acl`` is the text of Mosquitto's acl_file."""

    def __init__(
        self, workdir: Path, *, ca: Path, cert: Path, key: Path, passwords: dict[str, str], acl: str
    ) -> None:
        super().__init__(workdir)
        self.ca, self.cert, self.key, self.passwords, self.acl = ca, cert, key, passwords, acl

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def base_conf(self) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        pw = self.workdir / f"passwd-{self.port}"
        pw.write_text("")
        for user, password in self.passwords.items():
            subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True, capture_output=True,
                           timeout=30)  # fmt: skip
        acl = self.workdir / f"acl-{self.port}"
        acl.write_text(self.acl)
        return (
            f"listener {self.port} 127.0.0.1\n"
            f"cafile {self.ca}\ncertfile {self.cert}\nkeyfile {self.key}\n"
            "require_certificate true\n"
            "allow_anonymous false\n"
            f"password_file {pw}\nacl_file {acl}\n"
        )
