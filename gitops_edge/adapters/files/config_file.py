"""Read the agent config file: YAML with line numbers, then the pure validator."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from gitops_edge.adapters.files.yaml_reader import read_yaml_file
from gitops_edge.core.config import parse_config
from gitops_edge.errors import ConfigError, DesiredStateError
from gitops_edge.model.config import AgentConfig

DEFAULT_PATH = "/etc/gitops-edge/config.yaml"


def config_path(cli_value: str | None, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(cli_value or env.get("GITOPS_EDGE_CONFIG") or DEFAULT_PATH)


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    if not path.is_file():
        raise ConfigError(f"no agent config at {path} (give --config or GITOPS_EDGE_CONFIG)")
    try:
        doc = read_yaml_file(path, str(path))
    except DesiredStateError as exc:  # same problem, but in the device's own config
        raise ConfigError(exc.message, exc.location) from None
    cfg = parse_config(
        doc.data,
        file=str(path),
        lines=doc.lines,
        environ=os.environ if environ is None else environ,
        hostname=socket.gethostname(),
    )
    if not cfg.state_dir.is_absolute():  # relative to the config file, like compose paths
        cfg = _with_state_dir(cfg, (path.parent / cfg.state_dir).resolve())
    return cfg


def _with_state_dir(cfg: AgentConfig, state_dir: Path) -> AgentConfig:
    from dataclasses import replace

    return replace(cfg, state_dir=state_dir)
