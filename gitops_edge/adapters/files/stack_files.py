"""The files of one stack in a checkout: find stack directories, read them, keep them inside the repo.

Everything here refuses a path (subpath, symlink, env file, bind source) that
leads out of the repository, and hands plain data to ``gitops_edge.core.compose``.
"""

from __future__ import annotations

import os
import posixpath
import pwd
import re
from collections.abc import Mapping
from pathlib import Path

from gitops_edge.adapters.files.includes import read_includes
from gitops_edge.adapters.files.yaml_reader import MAX_FILE_BYTES, read_yaml_file
from gitops_edge.core.compose import build_stack
from gitops_edge.core.compose.configs import SecretFile
from gitops_edge.core.compose.dotenv import DotenvError, parse_dotenv
from gitops_edge.core.compose.extends import ComposeDoc
from gitops_edge.errors import DesiredStateError, Location
from gitops_edge.model.config import DeviceConfig
from gitops_edge.model.spec import StackSpec

COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def find_stack_dirs(checkout_root: Path, subpath: str) -> list[Path]:
    """Immediate sub-directories of ``subpath`` that hold a compose file, sorted."""
    root = repo_root(checkout_root)
    base = inside(root, safe_subpath(subpath), "desired-state path")
    if not base.is_dir():
        raise DesiredStateError(f"desired-state path {subpath!r} is not a directory",
                                Location(safe_subpath(subpath)))
    out = []
    for child in sorted(base.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        if any((child / n).exists() or (child / n).is_symlink() for n in COMPOSE_FILE_NAMES):
            out.append(child)
    return out


def secret_lookup(device: DeviceConfig) -> SecretFile | None:
    """Where the device keeps secrets: ``device.secrets_dir/<name>``; ``None`` when it keeps none."""
    if device.secrets_dir is None:
        return None
    base = device.secrets_dir

    def find(name: str) -> str | None:
        path = os.path.join(base, name)
        return path if os.path.isfile(path) else None

    return find


def _validation_secret(name: str) -> str:
    """Validating without a device: every secret counts as present (the device checks for real)."""
    return posixpath.join("/device-secrets", name)


VALIDATION_SECRETS: SecretFile = _validation_secret


def load_stack(
    checkout_root: Path, stack_dir: Path, environ: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None, secrets: SecretFile | None = VALIDATION_SECRETS,
) -> StackSpec:
    """One stack directory (absolute, or relative to ``checkout_root``) to StackSpec.

    ``env``, when given, is the complete interpolation environment (fleet
    targeting layered it already); otherwise the stack's ``.env`` under ``environ``.
    ``secrets`` finds a secret on the device (``secret_lookup``); ``None`` means
    the device has none, the default validates without a device.
    """
    root = repo_root(checkout_root)
    directory = stack_dir if stack_dir.is_absolute() else root / stack_dir
    rel_dir = _rel(root, directory)
    inside(root, rel_dir, "stack directory")
    compose_rel = _compose_file(root, rel_dir)
    if env is None:
        env = _interpolation_env(root, rel_dir, environ or {}, posixpath.basename(compose_rel))
    doc = read_yaml_file(inside(root, compose_rel, "compose file"), compose_rel)
    spec = build_stack(
        doc.data,
        doc.lines,
        name=posixpath.basename(rel_dir),
        stack_dir=rel_dir,
        compose_file=compose_rel,
        root=str(root),
        env=env,
        read_text=lambda rel: read_text(root, rel),
        includes=read_includes(
            rel_dir, compose_rel, doc.data, doc.lines, env,
            read_text=lambda rel: read_text(root, rel),
            read_yaml=lambda rel: read_yaml_file(inside(root, rel, "included file"), rel),
        ),
        read_compose=lambda rel: _compose_doc(root, rel),
        secret_file=secrets,
        home=agent_home(),
    )
    _check_bind_symlinks(root, spec)
    return spec


def agent_home() -> str | None:
    """The home directory of the agent's user (``$HOME``, else the password database), for ``~``."""
    home = os.environ.get("HOME")
    if home:
        return home
    try:
        return pwd.getpwuid(os.getuid()).pw_dir or None
    except KeyError:
        return None


def _compose_doc(root: Path, rel: str) -> ComposeDoc:
    """Another compose file of the repository (``extends: {file: ...}``)."""
    doc = read_yaml_file(inside(root, rel, "extended file"), rel)
    return ComposeDoc(doc.data, doc.lines)


def repo_root(checkout_root: Path) -> Path:
    return Path(os.path.abspath(checkout_root))


def safe_subpath(subpath: str) -> str:
    rel = posixpath.normpath(subpath.replace(os.sep, "/") or ".")
    if posixpath.isabs(rel) or rel == ".." or rel.startswith("../"):
        raise DesiredStateError(f"desired-state path {subpath!r} leaves the repository",
                                Location(subpath))
    return rel


def _rel(root: Path, path: Path) -> str:
    rel = posixpath.normpath(os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/"))
    if rel == ".." or rel.startswith("../"):
        raise DesiredStateError("stack directory is outside the repository", Location(str(path)))
    return rel


def inside(root: Path, rel: str, what: str) -> Path:
    """``root/rel``, refusing it when symlinks resolve it outside the repository."""
    path = root / rel
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise DesiredStateError(f"{what} is a symlink that leads out of the repository",
                                Location(rel))
    return path


def _compose_file(root: Path, rel_dir: str) -> str:
    found = [n for n in COMPOSE_FILE_NAMES
             if (root / rel_dir / n).exists() or (root / rel_dir / n).is_symlink()]
    if not found:
        raise DesiredStateError(f"no compose file (one of {', '.join(COMPOSE_FILE_NAMES)})",
                                Location(rel_dir))
    if len(found) > 1:
        raise DesiredStateError(
            f"several compose files in one stack: {', '.join(found)}; keep exactly one",
            Location(posixpath.join(rel_dir, found[1])),
        )
    return posixpath.join(rel_dir, found[0]) if rel_dir != "." else found[0]


def _interpolation_env(
    root: Path, rel_dir: str, environ: Mapping[str, str], compose_name: str
) -> dict[str, str]:
    """The stack's ``.env`` under any explicitly given variables (which win, as in Compose)."""
    rel = posixpath.normpath(posixpath.join(rel_dir, ".env"))
    text = read_text(root, rel)
    if text is None:
        return dict(environ)
    try:
        values = parse_dotenv(text, environ)
    except DotenvError as exc:
        raise DesiredStateError(str(exc), Location(rel, exc.line)) from None
    _check_compose_variables(values, text, rel, posixpath.basename(rel_dir), compose_name)
    return {**values, **environ}


def _check_compose_variables(
    values: Mapping[str, str], text: str, rel: str, stack: str, compose_name: str
) -> None:
    """``.env`` may steer Compose itself: refuse what would make it load another project.

    ``COMPOSE_FILE`` naming other files, or ``COMPOSE_PROJECT_NAME`` other
    than the directory, would make ``docker compose`` run by hand in the
    stack directory manage something else than the agent does.
    ``COMPOSE_PROFILES`` is honoured by the loader; the others only steer
    the Compose CLI and change nothing here.
    """
    files = values.get("COMPOSE_FILE")
    separator = values.get("COMPOSE_PATH_SEPARATOR") or ":"
    if files is not None and [posixpath.normpath(f) for f in files.split(separator)] != [compose_name]:
        raise DesiredStateError(
            f"COMPOSE_FILE={files} names other compose files; gitops-edge loads exactly the "
            f"stack's {compose_name}: remove it", Location(rel, _line_of(text, "COMPOSE_FILE")))
    project = values.get("COMPOSE_PROJECT_NAME")
    if project is not None and project != stack:
        raise DesiredStateError(
            f"COMPOSE_PROJECT_NAME={project} differs from the stack directory name {stack!r}; "
            "remove it or make them equal", Location(rel, _line_of(text, "COMPOSE_PROJECT_NAME")))


def _line_of(text: str, key: str) -> int | None:
    """The last line of a dotenv text that sets ``key`` (the one that wins)."""
    found = None
    pattern = re.compile(rf"^\s*(export\s+)?{key}\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            found = number
    return found


def read_text(root: Path, rel: str) -> str | None:
    """A repo-relative text file, ``None`` if absent; symlinks may not leave the repo or enter ``.git``."""
    if ".git" in posixpath.normpath(rel).split("/"):
        raise DesiredStateError("reads the repository's .git directory, which is never desired state", Location(rel))
    path = root / rel
    if not path.exists() and not path.is_symlink():
        return None
    path = inside(root, rel, "file")
    real_git = os.path.join(os.path.realpath(root), ".git")
    real = os.path.realpath(path)
    if real == real_git or real.startswith(real_git + os.sep):
        raise DesiredStateError("file is a symlink into the repository's .git directory", Location(rel))
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DesiredStateError(f"file is larger than the {MAX_FILE_BYTES}-byte limit",
                                    Location(rel))
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DesiredStateError(f"cannot read file: {exc}", Location(rel)) from None


def _check_bind_symlinks(root: Path, spec: StackSpec) -> None:
    """A bind source inside the checkout must not reach outside it through a symlink."""
    real_root = os.path.realpath(root)
    prefix = str(root) + os.sep
    for svc in spec.services:
        for i, mount in enumerate(svc.mounts):
            if mount.type != "bind" or mount.source is None:
                continue
            if not mount.source.startswith(prefix):
                continue
            real = os.path.realpath(mount.source)
            if real != real_root and not real.startswith(real_root + os.sep):
                raise DesiredStateError(
                    "bind source is a symlink that leads out of the repository",
                    Location(spec.compose_file, None, f"services.{svc.name}.volumes[{i}]"),
                )
