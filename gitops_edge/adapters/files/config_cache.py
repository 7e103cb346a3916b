"""The agent config's parsed YAML, kept in the state dir so a one-shot command need not import PyYAML.

``import yaml`` is 16-24 ms of a no-change ``sync`` or ``status`` process on a
slow board (its pure-Python reader and resolver compile their expressions even
though the C parser does the work), for a file that almost never changes. This
keeps only the YAML reader's output (plain data and the line of every key), not
the validated config: validation still runs on every start with the current
environment and hostname, so nothing but the file's bytes is cached.

The cache is keyed by the SHA-256 of the config file's exact bytes and the agent
version; any other file, an unreadable, torn or stale one, is ignored and the
file parsed as before, so a changed config can never be answered from it. It is
written only when it does not match (a config change), atomically, without
fsync (losing it costs one parse). It lives in the state dir the config names;
a process finds that dir before parsing from the file's top-level ``state_dir:``
line (``state_dir_hint``), or the default, and writes there only if the parsed
config agrees. JSON, not pickle: a tampered file can only be wrong data, which
the validator still checks, never code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from gitops_edge import __version__

NAME = "config-cache.json"
FORMAT = 1
_STATE_DIR_LINE = re.compile(r"^state_dir:[ \t]*([^\s#'\"]+|'[^'\n]*'|\"[^\"\\\n$]*\")[ \t]*(?:#.*)?$", re.M)


def state_dir_hint(text: str, config_path: Path, default: str) -> Path | None:
    """Where the state dir should be, from the raw text; ``None`` when a plain read cannot tell."""
    found = _STATE_DIR_LINE.findall(text)
    if len(found) > 1 or (not found and re.search(r"(?m)^[\"']?state_dir", text)):
        return None  # a flow mapping, an odd key: leave it to the parser
    value = found[0].strip("'\"") if found else default
    if not value or "$" in value:
        return None  # expanded from the environment: only the parser knows
    return (config_path.parent / value).resolve() if not os.path.isabs(value) else Path(value)


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def load(state_dir: Path, key: str) -> tuple[dict[str, Any], dict[tuple[str | int, ...], int]] | None:
    """The cached (data, lines) for the config whose bytes hash to ``key``, else ``None``."""
    try:
        with open(state_dir / NAME, encoding="utf-8") as f:
            doc = json.load(f)
        if doc["format"] != FORMAT or doc["version"] != __version__ or doc["sha256"] != key:
            return None
        data, lines = doc["data"], doc["lines"]
        if not isinstance(data, dict) or not isinstance(lines, list):
            return None
        return data, {tuple(path): line for path, line in lines}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, torn or foreign: parse the file


def store(state_dir: Path, key: str, data: dict[str, Any], lines: dict[tuple[str | int, ...], int]) -> None:
    """Keep the parse of the config whose bytes hash to ``key``; best effort (a cache)."""
    doc = {"format": FORMAT, "version": __version__, "sha256": key, "data": data,
           "lines": [[list(path), line] for path, line in lines.items()]}
    try:
        text = json.dumps(doc, allow_nan=False)
        if json.loads(text)["data"] != data:
            return  # not plain JSON data: not cached
    except ValueError:
        return  # a NaN or infinity in the config: parse it each time
    path = state_dir / NAME
    tmp = state_dir / f".{NAME}.{os.getpid()}"
    try:  # owner-only, whatever the umask: the config may hold credentials (MQTT, webhook)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
