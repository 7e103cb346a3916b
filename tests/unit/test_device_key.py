"""``adapters/files/device_key``: the device side of the idle memo a process keeps in the store.

A fresh ``sync`` process trusts the stored memo only while this digest is the one it was
armed with: it must change with the agent config, any file the config names and the secrets
directory, and with nothing else (or every process would run the full sync).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gitops_edge.adapters.files.config_file import load_config
from gitops_edge.adapters.files.device_key import device_key


def write_config(tmp: Path, extra: str = "") -> Path:
    (tmp / "keys").mkdir(exist_ok=True)
    (tmp / "secrets").mkdir(exist_ok=True)
    (tmp / "keys" / "acme.pub").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    path = tmp / "agent.yaml"
    path.write_text(
        f"device: {{id: pump-7, secrets_dir: {tmp / 'secrets'}}}\n"
        "source: {url: /srv/fleet, ref: main}\n"
        f"state_dir: {tmp / 'state'}\n"
        "trust:\n  default: deny\n  images:\n"
        f"    - {{match: 'registry.example/*', keys: [{tmp / 'keys' / 'acme.pub'}]}}\n"
        f"{extra}"
    )
    return path


def key(path: Path) -> str:
    return device_key(load_config(path, environ={}))


def test_the_key_is_stable_across_processes(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    code = ("import sys; from pathlib import Path; from gitops_edge.adapters.files.config_file import load_config; "
            "from gitops_edge.adapters.files.device_key import device_key; "
            "print(device_key(load_config(Path(sys.argv[1]), environ={})))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == key(path) == key(path)


def test_the_config_a_named_file_and_the_secrets_directory_change_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    last = [key(path)]

    def changed(what: str) -> None:
        k = key(path)
        assert k != last[-1], what
        last.append(k)

    path.write_text(path.read_text() + "# a comment only\n")
    changed("the config file's bytes")
    path.write_text(path.read_text().replace("ref: main", "ref: stable"))
    changed("a setting")
    pub = tmp_path / "keys" / "acme.pub"
    pub.write_text(pub.read_text().replace("AAAA", "BBBB"))
    changed("a trust key's content")
    pub.unlink()
    changed("a trust key removed")
    (tmp_path / "secrets" / "db_password").write_text("hunter2")
    changed("a secret added")
    (tmp_path / "secrets" / "db_password").write_text("hunter3")
    changed("a secret changed")
    (tmp_path / "secrets" / "db_password").unlink()
    changed("a secret removed")
    assert last[-1] == last[-4]  # the same files as before the secret came: the same key
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "store.db").write_text("the agent's own state is no input")
    assert key(path) == last[-1]


def test_an_unreadable_config_or_secrets_directory_still_gives_a_key(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    before = key(path)
    os.rename(tmp_path / "secrets", tmp_path / "gone")
    assert key(path) != before
