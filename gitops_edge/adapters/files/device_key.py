"""What a fresh process cannot assume unchanged since the last one: one digest of the device side.

The idle memo a process keeps in the store (``engine.idle.SavedMemo``) is only
as good as what it was based on. The daemon's in-memory memo lives as long as
its config; a new process may run with another config, another agent version,
a replaced trust key or a secret dropped into (or taken out of) the secrets
directory. This digest covers them: the agent's version, the parsed config
(environment and hostname already expanded into it), the bytes of the config
file, every file the config names and every entry of ``device.secrets_dir``
(the content of each small regular file, else its status: size, times, inode).
A few small reads: cheap enough for every poll.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from gitops_edge import __version__
from gitops_edge.model.config import AgentConfig


def device_key(config: AgentConfig) -> str:
    h = hashlib.sha256()
    h.update(f"{__version__}\0{config!r}\0".encode())
    h.update(_content(Path(config.config_file)))
    for path in sorted(set(_paths(config))):
        h.update(f"\0{path}\0{_stat(path)}".encode())
    if config.device.secrets_dir is not None:
        h.update(f"\0secrets {_listing(config.device.secrets_dir)}".encode())
    return h.hexdigest()


def _paths(value: object) -> Iterator[str]:
    """Every ``Path`` in the config, however deep (trust keys, roots, signers, credentials)."""
    if isinstance(value, Path):
        yield str(value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            if f.name != "state_dir":  # the agent's own state, not an input
                yield from _paths(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _paths(item)


def _content(path: Path) -> bytes:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError as exc:
        return f"unreadable: {exc.errno}".encode()


SMALL = 1 << 20  # files up to this size are hashed (keys, secrets, signers); larger ones by status


def _stat(path: str) -> str:
    """A file's content digest (a rewrite within one timestamp tick still shows), else its status."""
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode) and st.st_size <= SMALL:
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
    except OSError as exc:
        return f"missing {exc.errno}"
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {st.st_mode}"


def _listing(directory: str) -> str:
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        return f"missing {exc.errno}"
    return " ".join(f"{name}:{_stat(os.path.join(directory, name))}" for name in names)
