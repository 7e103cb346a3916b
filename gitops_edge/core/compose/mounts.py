"""Service ``volumes`` (short and long syntax) and ``tmpfs``, to Mount.

A short ``SRC:DST[:MODE]`` is a bind when SRC starts with ``.`` or ``/``
(as in Compose), otherwise a named volume. Relative bind sources resolve
against the stack directory to an absolute path in the device's checkout
and may not leave the repository. A ``~`` source is under the home
directory of the user running the agent, as Compose puts it under the home
of whoever runs Compose (the security policy then decides, like any host
path outside the repository). A Windows absolute
source (``C:\\data``) is kept as written, as Compose keeps it; container
paths are cleaned (``/data/`` -> ``/data``) as Compose cleans them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gitops_edge.core.compose.fields import (
    as_bool,
    as_mapping,
    as_size,
    as_str,
    as_str_or_list,
    check_keys,
    type_name,
)
from gitops_edge.core.compose.paths import PathEscapeError, host_path
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.core.compose.units import parse_size
from gitops_edge.model.spec import Mount

PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_WINDOWS_ABS = re.compile(r"^[A-Za-z]:[\\/]")
_LONG_KEYS = ("type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency")
_TYPES = ("volume", "bind", "tmpfs")
_OTHER_TYPES = {  # in Compose 2.40's schema, refused here
    "image": "an image mount needs Docker Engine 28 (API 1.48)",
    "npipe": "a Windows named pipe",
    "cluster": "a Swarm cluster volume",
}


@dataclass(frozen=True)
class MountContext:
    root: str  # absolute checkout root on the device
    stack_dir: str  # repo-relative stack directory
    volumes: Collection[str]  # keys declared under top-level `volumes:`
    home: str | None = None  # home directory of the agent's user, for `~` (None: `~` refused)


def parse_volumes(p: Problems, path: KeyPath, value: object, ctx: MountContext) -> list[Mount]:
    if not isinstance(value, list):
        p.add(path, f"must be a list, not a {type_name(value)}")
        return []
    out: list[Mount] = []
    for i, item in enumerate(value):
        where = (*path, i)
        if isinstance(item, dict):
            mount = _long(p, where, item, ctx)
        elif isinstance(item, str):
            mount = _short(p, where, item, ctx)
        else:
            p.add(where, f"must be a string or a mapping, not a {type_name(item)}")
            mount = None
        if mount is not None:
            out.append(mount)
    return out


def parse_tmpfs(p: Problems, path: KeyPath, value: object) -> list[Mount]:
    """Service-level ``tmpfs: /run`` or ``[/run:size=64k,mode=1770]``.

    Compose hands these to Docker's ``HostConfig.Tmpfs`` with the options as
    written, so they are kept as written; ``size`` is also read, to check it.
    """
    entries = as_str_or_list(p, path, value)
    out: list[Mount] = []
    for i, entry in enumerate(entries or ()):
        where = (*path, i) if isinstance(value, list) else path
        target, _, opts = entry.partition(":")
        size: int | None = None
        for opt in filter(None, opts.split(",")):
            name, _, arg = opt.partition("=")
            if name == "size":
                try:
                    size = parse_size(arg)
                except ValueError:
                    p.add(where, f"invalid tmpfs size {arg!r}")
        if not target.startswith("/"):
            p.add(where, f"tmpfs target {target!r} must be an absolute path")
            continue
        out.append(Mount(type="tmpfs", target=target, tmpfs_size=size, tmpfs_options=opts))
    return out


def _short(p: Problems, path: KeyPath, spec: str, ctx: MountContext) -> Mount | None:
    drive = spec[:2] if _WINDOWS_ABS.match(spec) else ""  # C:\data:/data keeps its drive
    parts = spec[len(drive):].split(":")
    parts[0] = drive + parts[0]
    if drive and (len(parts) == 1 or not parts[1].startswith("/")):
        p.add(path, f"volume {spec!r}: Compose reads {drive!r} as a Windows drive, not as a volume "
                    "name; give the volume a longer name")
        return None
    if len(parts) == 1:
        target = _target(p, path, parts[0])
        return None if target is None else Mount(type="volume", target=target)
    if len(parts) > 3:
        p.add(path, f"invalid volume {spec!r}")
        return None
    source, raw_target = parts[0], parts[1]
    read_only = False
    selinux: str | None = None
    propagation: str | None = None
    nocopy = False
    for opt in filter(None, parts[2].split(",") if len(parts) == 3 else ()):
        if opt in ("ro", "rw"):
            read_only = opt == "ro"
        elif opt in ("z", "Z"):
            selinux = opt
        elif opt in PROPAGATIONS:
            propagation = opt
        elif opt == "nocopy":
            nocopy = True
        else:
            p.add(path, f"volume option {opt!r} is not supported by gitops-edge")
    target = _target(p, path, raw_target)
    if target is None:
        return None
    if source.startswith((".", "/", "~")) or _WINDOWS_ABS.match(source):
        return _bind(p, path, source, target, read_only, True, ctx, selinux, propagation)
    if selinux is not None or propagation is not None:
        p.add(path, f"volume option {selinux or propagation!r} applies to bind mounts only")
    return _named(p, path, source, target, read_only, ctx, nocopy)


def _long(p: Problems, path: KeyPath, item: dict[str, Any], ctx: MountContext) -> Mount | None:
    check_keys(p, path, item, _LONG_KEYS)
    kind = item.get("type")
    if isinstance(kind, str) and kind in _OTHER_TYPES:
        p.add((*path, "type"), f"mount type {kind!r} is not supported by gitops-edge: {_OTHER_TYPES[kind]}")
        return None
    if kind not in _TYPES:
        p.add((*path, "type"), f"mount type must be one of {', '.join(_TYPES)}, not {kind!r}")
        return None
    raw_target = as_str(p, (*path, "target"), item.get("target"))
    target = _target(p, (*path, "target"), raw_target) if raw_target is not None else None
    read_only = as_bool(p, (*path, "read_only"), item.get("read_only", False)) or False
    source = item.get("source")
    if source is not None:
        source = as_str(p, (*path, "source"), source)
    for section in ("bind", "volume", "tmpfs"):
        if section in item and section != kind:
            p.add((*path, section), f"{section!r} options do not apply to a {kind} mount")
    if target is None:
        return None
    if kind == "tmpfs":
        return _long_tmpfs(p, path, item, target)
    if kind == "bind":
        create = False  # long syntax: Compose only creates the host path when asked
        selinux: str | None = None
        propagation: str | None = None
        if "bind" in item:
            opts = as_mapping(p, (*path, "bind"), item["bind"]) or {}
            check_keys(p, (*path, "bind"), opts, ("create_host_path", "selinux", "propagation"),
                       {"recursive": "not implemented yet (binds here are recursive; Compose's "
                                     "'writable' and 'readonly' need Docker Engine 25)"})
            if opts.get("propagation") is not None:
                propagation = as_str(p, (*path, "bind", "propagation"), opts["propagation"])
                if propagation not in (None, *PROPAGATIONS):
                    p.add((*path, "bind", "propagation"), f"invalid propagation {propagation!r}")
            if "create_host_path" in opts:
                create = bool(as_bool(p, (*path, "bind", "create_host_path"),
                                      opts["create_host_path"]))
            if opts.get("selinux") is not None:
                selinux = as_str(p, (*path, "bind", "selinux"), opts["selinux"])
                if selinux not in (None, "z", "Z"):
                    p.add((*path, "bind", "selinux"), f"selinux must be 'z' or 'Z', not {selinux!r}")
        if not source:
            p.add((*path, "source"), "a bind mount needs a source")
            return None
        return _bind(p, (*path, "source"), source, target, read_only, create, ctx, selinux, propagation)
    nocopy = False
    if "volume" in item:
        opts = as_mapping(p, (*path, "volume"), item["volume"]) or {}
        check_keys(p, (*path, "volume"), opts, ("nocopy",),
                   {"subpath": "it needs Docker Engine 26 (API 1.45)",
                    "labels": "not implemented yet (label the volume under the top-level 'volumes')"})
        if opts.get("nocopy") is not None:
            nocopy = bool(as_bool(p, (*path, "volume", "nocopy"), opts["nocopy"]))
    if not source:
        return Mount(type="volume", target=target, read_only=read_only, volume_nocopy=nocopy)
    return _named(p, (*path, "source"), source, target, read_only, ctx, nocopy)


def _long_tmpfs(p: Problems, path: KeyPath, item: dict[str, Any], target: str) -> Mount:
    size: int | None = None
    mode: int | None = None
    if "tmpfs" in item:
        opts = as_mapping(p, (*path, "tmpfs"), item["tmpfs"]) or {}
        check_keys(p, (*path, "tmpfs"), opts, ("size", "mode"))
        if "size" in opts:
            size = as_size(p, (*path, "tmpfs", "size"), opts["size"])
        if opts.get("mode") is not None:
            mode = _octal(p, (*path, "tmpfs", "mode"), opts["mode"])
    return Mount(type="tmpfs", target=target, tmpfs_size=size, tmpfs_mode=mode)


def _octal(p: Problems, path: KeyPath, value: object) -> int | None:
    """A file mode: octal text, or unquoted ``01777`` (octal, as Compose's YAML reads a leading 0).

    The YAML reader returns unquoted ``01777`` as the float ``1777.0`` (plain
    decimals are ints), so an integral float is read back as octal digits.
    """
    if isinstance(value, float) and value.is_integer() and value >= 0:
        value = str(int(value))
    if isinstance(value, str):
        try:
            return int(value, 8)
        except ValueError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    p.add(path, f"invalid file mode {value!r}")
    return None


def _target(p: Problems, path: KeyPath, target: str) -> str | None:
    """An absolute container path, cleaned as Compose cleans it (``/data/`` -> ``/data``)."""
    if not target.startswith("/"):
        p.add(path, f"mount target {target!r} must be an absolute path")
        return None
    return clean_path(target)


def clean_path(path: str) -> str:
    """Go's ``path.Clean`` for an absolute path: POSIX keeps a leading ``//``, Go does not."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _bind(
    p: Problems,
    path: KeyPath,
    source: str,
    target: str,
    read_only: bool,
    create: bool,
    ctx: MountContext,
    selinux: str | None = None,
    propagation: str | None = None,
) -> Mount | None:
    if source.startswith("~"):
        if ctx.home is None or not posixpath.isabs(ctx.home):
            p.add(path, f"bind source {source!r}: '~' needs the agent's home directory, which is unknown")
            return None
        resolved = clean_path(ctx.home + "/" + source[1:])  # as Compose: `~x` is <home>/x
    elif _WINDOWS_ABS.match(source):
        resolved = source  # absolute on Windows: Compose keeps it as written
    else:
        try:
            resolved = host_path(ctx.root, ctx.stack_dir, source)
        except PathEscapeError as exc:
            p.add(path, f"bind source: {exc}")
            return None
    return Mount(type="bind", target=target, source=resolved, read_only=read_only,
                 bind_create_host_path=create, bind_selinux=selinux, bind_propagation=propagation)


def _named(
    p: Problems, path: KeyPath, source: str, target: str, read_only: bool, ctx: MountContext,
    nocopy: bool = False,
) -> Mount | None:
    if source not in ctx.volumes:
        p.add(path, f"service refers to undefined volume {source!r}")
        return None
    return Mount(type="volume", target=target, source=source, read_only=read_only, volume_nocopy=nocopy)
