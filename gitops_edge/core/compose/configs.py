"""``configs`` and ``secrets``: files Compose puts into a container, as ``docker compose up`` does.

A config with ``file:`` (inside the repository) is bind-mounted read-only,
by default at ``/<name>``; one with ``content:`` or ``environment:`` is
written into the container before it starts. A secret never comes from the
repository: whatever its declaration says, its file is ``<name>`` in the
device's secrets directory (``device.secrets_dir`` in the agent config),
bind-mounted read-only at ``/run/secrets/<name>``; a secret missing there is
a located error before anything on the device changes. ``external`` and
``template_driver`` are Swarm features and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops_edge.core.compose.fields import as_int, as_mapping, as_str, as_text, check_keys, type_name
from gitops_edge.core.compose.paths import PathEscapeError, host_path
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.model.spec import InjectedFile, Mount

SecretFile = Callable[[str], "str | None"]
"""The absolute path of a secret on the device, ``None`` when the file is missing."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONFIG_KEYS = ("file", "content", "environment", "name", "external", "labels", "template_driver")
_SECRET_KEYS = ("file", "environment", "name", "external", "labels", "template_driver")
_REFERENCE_KEYS = ("source", "target", "uid", "gid", "mode")


@dataclass(frozen=True)
class ConfigSource:
    """Where a declared config's bytes come from: a host path or inline text."""

    path: str | None = None
    content: str | None = None


@dataclass(frozen=True)
class Declared:
    """The project's top-level ``configs`` and ``secrets``, resolved for its services."""

    configs: Mapping[str, ConfigSource]
    secrets: Mapping[str, str | None]  # name -> device path (None: missing on the device)
    secrets_dir_missing: bool = False  # no device.secrets_dir configured


def declare(
    p: Problems, data: Mapping[str, Any], root: str, directory: str, env: Mapping[str, str],
    secret_file: SecretFile | None,
) -> Declared:
    """Validate ``configs:`` and ``secrets:`` of one file (``directory`` is its own)."""
    configs: dict[str, ConfigSource] = {}
    for key, cfg in _section(p, "configs", data.get("configs")).items():
        path: KeyPath = ("configs", key)
        check_keys(p, path, cfg, _CONFIG_KEYS)
        _swarm_only(p, path, cfg)
        given = [k for k in ("file", "content", "environment") if cfg.get(k) is not None]
        if len(given) != 1:
            p.add(path, "a config needs exactly one of file, content or environment")
            continue
        if given[0] == "file" and (raw := as_str(p, (*path, "file"), cfg["file"])) is not None:
            try:
                configs[key] = ConfigSource(path=host_path(root, directory, raw))
            except PathEscapeError as exc:
                p.add((*path, "file"), f"config file: {exc}")
        elif given[0] == "content" and (text := as_text(p, (*path, "content"), cfg["content"])) is not None:
            configs[key] = ConfigSource(content=text)
        elif given[0] == "environment" and (var := as_str(p, (*path, "environment"), cfg["environment"])):
            configs[key] = ConfigSource(content=env.get(var, ""))
    secrets: dict[str, str | None] = {}
    for key, cfg in _section(p, "secrets", data.get("secrets")).items():
        path = ("secrets", key)
        check_keys(p, path, cfg, _SECRET_KEYS)
        _swarm_only(p, path, cfg)
        if not _NAME.match(key):
            p.add(path, f"secret name {key!r} must be a plain file name (letters, digits, '.', '_', '-')")
            continue
        secrets[key] = secret_file(key) if secret_file is not None else None
    return Declared(configs, secrets, secrets_dir_missing=secret_file is None)


def merge(parts: list[Declared]) -> Declared:
    return Declared(
        {k: v for d in parts for k, v in d.configs.items()},
        {k: v for d in parts for k, v in d.secrets.items()},
        any(d.secrets_dir_missing for d in parts),
    )


def service_files(
    p: Problems, path: KeyPath, svc: Mapping[str, Any], declared: Declared
) -> tuple[list[Mount], list[InjectedFile]]:
    """A service's ``configs`` and ``secrets`` as read-only mounts and injected files."""
    mounts: list[Mount] = []
    files: list[InjectedFile] = []
    for i, ref in _references(p, (*path, "configs"), svc.get("configs")):
        where: KeyPath = (*path, "configs", i)
        source = declared.configs.get(ref.source)
        if source is None:
            p.add(where, f"service refers to undefined config {ref.source!r}")
            continue
        target = ref.target or f"/{ref.source}"
        target = target if target.startswith("/") else f"/{target}"
        if source.path is not None:
            mounts.append(Mount("bind", target, source.path, read_only=True, bind_create_host_path=False,
                                origin="config"))
        else:
            files.append(InjectedFile(target, source.content or "", ref.uid or "0", ref.gid or "0",
                                      0o444 if ref.mode is None else ref.mode))
    for i, ref in _references(p, (*path, "secrets"), svc.get("secrets")):
        where = (*path, "secrets", i)
        if ref.source not in declared.secrets:
            p.add(where, f"service refers to undefined secret {ref.source!r}")
            continue
        device_path = declared.secrets[ref.source]
        if declared.secrets_dir_missing:
            p.add(where, f"secret {ref.source!r}: this device has no secrets directory "
                         "(device.secrets_dir in the agent config)")
            continue
        if device_path is None:
            p.add(where, f"secret {ref.source!r} is not on this device (a file named {ref.source!r} "
                         "in device.secrets_dir)")
            continue
        target = ref.target or ref.source
        target = target if target.startswith("/") else f"/run/secrets/{target}"
        mounts.append(Mount("bind", target, device_path, read_only=True, bind_create_host_path=False,
                            origin="secret"))
    return mounts, files


@dataclass(frozen=True)
class _Ref:
    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


def _references(p: Problems, path: KeyPath, value: object) -> list[tuple[int, _Ref]]:
    if value is None:
        return []
    if not isinstance(value, list):
        p.add(path, f"must be a list, not a {type_name(value)}")
        return []
    out = []
    for i, item in enumerate(value):
        where = (*path, i)
        if isinstance(item, str):
            out.append((i, _Ref(item)))
            continue
        ref = as_mapping(p, where, item)
        if ref is None:
            continue
        check_keys(p, where, ref, _REFERENCE_KEYS)
        source = as_str(p, (*where, "source"), ref.get("source"))
        if source is None:
            continue
        target = as_str(p, (*where, "target"), ref["target"]) if ref.get("target") is not None else None
        uid = as_text(p, (*where, "uid"), ref["uid"]) if ref.get("uid") is not None else None
        gid = as_text(p, (*where, "gid"), ref["gid"]) if ref.get("gid") is not None else None
        mode = _mode(p, (*where, "mode"), ref["mode"]) if ref.get("mode") is not None else None
        out.append((i, _Ref(source, target, uid, gid, mode)))
    return out


def _mode(p: Problems, path: KeyPath, value: object) -> int | None:
    """Octal text (``"0440"``), unquoted ``0440`` (octal, as Compose's YAML reads a leading 0), or decimal.

    The YAML reader returns an unquoted ``0440`` as the float ``440.0`` (a
    plain decimal is an int), so an integral float is read back as octal digits.
    """
    if isinstance(value, float) and value.is_integer() and value >= 0:
        value = str(int(value))
    if isinstance(value, str):
        try:
            return int(value, 8)
        except ValueError:
            p.add(path, f"invalid file mode {value!r}")
            return None
    return as_int(p, path, value, minimum=0)


def _section(p: Problems, name: str, value: object) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    section = as_mapping(p, (name,), value) or {}
    out = {}
    for key, cfg in section.items():
        if key.startswith("x-"):
            continue
        body = as_mapping(p, (name, key), cfg if cfg is not None else {})
        if body is not None:
            out[key] = body
    return out


def _swarm_only(p: Problems, path: KeyPath, cfg: Mapping[str, Any]) -> None:
    for key in ("external", "template_driver"):
        if cfg.get(key) not in (None, False):
            p.add((*path, key), f"{key!r} is a Swarm feature, not supported by gitops-edge")
