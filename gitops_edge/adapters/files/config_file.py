"""Read the agent config file: YAML with line numbers (or their cached parse), then the pure validator."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitops_edge.adapters.files import config_cache
from gitops_edge.core.config import parse_config
from gitops_edge.errors import ConfigError, DesiredStateError, Location
from gitops_edge.model.config import DEFAULT_STATE_DIR, AgentConfig

DEFAULT_PATH = "/etc/gitops-edge/config.yaml"
MAX_BYTES = 1 << 20  # as for any YAML file the agent reads (yaml_reader.MAX_FILE_BYTES, not imported: PyYAML)


def config_path(cli_value: str | None, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(cli_value or env.get("GITOPS_EDGE_CONFIG") or DEFAULT_PATH)


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    if not path.is_file():
        raise ConfigError(f"no agent config at {path} (give --config or GITOPS_EDGE_CONFIG)")
    data, lines, keep = _read(path)
    cfg = parse_config(
        data,
        file=str(path),
        lines=lines,
        environ=os.environ if environ is None else environ,
        hostname=socket.gethostname(),
    )
    if not cfg.state_dir.is_absolute():  # relative to the config file, like compose paths
        cfg = _with_state_dir(cfg, (path.parent / cfg.state_dir).resolve())
    if keep is not None and keep[0] == cfg.state_dir:  # a new or changed config: cache its parse
        config_cache.store(keep[0], keep[1], data, lines)
    return cfg


def _read(path: Path) -> tuple[dict[str, Any], dict[tuple[str | int, ...], int], tuple[Path, str] | None]:
    """The file's YAML (data, key lines): from the cache when its bytes are the cached ones.

    The third value is where and under which key to cache a fresh parse, if anywhere.
    """
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"file is {size} bytes, larger than the {MAX_BYTES}-byte limit", Location(str(path)))
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", Location(str(path))) from None
    key = config_cache.digest(raw)
    hint = config_cache.state_dir_hint(raw.decode("utf-8", "replace"), path, DEFAULT_STATE_DIR)
    cached = config_cache.load(hint, key) if hint is not None else None
    if cached is not None:
        return cached[0], cached[1], None
    from gitops_edge.adapters.files.yaml_reader import parse_yaml

    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DesiredStateError("file is not valid UTF-8", Location(str(path))) from None
        doc = parse_yaml(text, str(path))
    except DesiredStateError as exc:  # same problem, but in the device's own config
        raise ConfigError(exc.message, exc.location) from None
    return doc.data, doc.lines, (hint, key) if hint is not None else None


def _with_state_dir(cfg: AgentConfig, state_dir: Path) -> AgentConfig:
    from dataclasses import replace

    return replace(cfg, state_dir=state_dir)
