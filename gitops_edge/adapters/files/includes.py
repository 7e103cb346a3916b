"""``include:``: read the compose files a stack includes, each confined to the repository.

Compose loads an included file as a project of its own directory: its
relative paths resolve there, and its variables are its ``env_file``
(default: the ``.env`` beside it) under the including project's. Includes may
nest; a cycle or a path that leaves the repository is a located error.
``project_directory`` other than the file's own directory is refused: the
stack's files must stay where the repository puts them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops_edge.adapters.files.yaml_reader import YamlDocument
from gitops_edge.core.compose.dotenv import DotenvError, parse_dotenv
from gitops_edge.core.compose.interpolate import InterpolationError, interpolate
from gitops_edge.core.compose.paths import PathEscapeError, repo_relative
from gitops_edge.core.compose.problems import KeyPath, LineMap, format_path, line_of
from gitops_edge.core.compose.stack import IncludedFile
from gitops_edge.errors import DesiredStateError, Location

MAX_INCLUDES = 32


ReadText = Callable[[str], "str | None"]
ReadYaml = Callable[[str], YamlDocument]


def read_includes(
    base_dir: str, file: str, data: Mapping[str, Any], lines: LineMap, env: Mapping[str, str],
    read_text: ReadText, read_yaml: ReadYaml,
) -> tuple[IncludedFile, ...]:
    """Every file ``data``'s ``include:`` names, depth first, nested ones included.

    ``read_text`` and ``read_yaml`` read repo-relative files and refuse
    symlinks that leave the repository.
    """
    out: list[IncludedFile] = []
    _walk(_Readers(read_text, read_yaml), base_dir, file, data, lines, env, out, (file,))
    return tuple(out)


@dataclass(frozen=True)
class _Readers:
    text: ReadText
    yaml: ReadYaml


def _walk(
    read: _Readers, base_dir: str, file: str, data: Mapping[str, Any], lines: LineMap,
    env: Mapping[str, str], out: list[IncludedFile], chain: tuple[str, ...],
) -> None:
    raw = data.get("include")
    if raw is None:
        return
    if not isinstance(raw, list):
        raise _error(file, lines, ("include",), "must be a list")
    for i, item in enumerate(raw):
        where: KeyPath = ("include", i)
        if isinstance(item, dict):
            unknown = set(item) - {"path", "env_file", "project_directory"}
            if unknown:
                raise _error(file, lines, (*where, sorted(unknown)[0]), f"unknown key {sorted(unknown)[0]!r}")
            paths, env_files = item.get("path"), item.get("env_file")
            project_dir = item.get("project_directory")
        else:
            paths, env_files, project_dir = item, None, None
        for rel in _strings(file, lines, where, paths, env):
            target = _confined(file, lines, where, base_dir, rel)
            inc_dir = posixpath.dirname(target) or "."
            if project_dir is not None and _confined(file, lines, where, base_dir,
                                                     _text(file, lines, where, project_dir, env)) != inc_dir:
                raise _error(file, lines, (*where, "project_directory"),
                             "project_directory other than the included file's directory is not supported")
            if target in chain:
                raise _error(file, lines, where, f"include cycle: {' -> '.join((*chain, target))}")
            if len(out) >= MAX_INCLUDES:
                raise _error(file, lines, where, f"more than {MAX_INCLUDES} included files")
            names = (_strings(file, lines, (*where, "env_file"), env_files, env) if env_files is not None
                     else [posixpath.join(inc_dir, ".env")])
            own: dict[str, str] = {}
            for env_rel in names:
                env_path = env_rel if env_files is None else _confined(file, lines, where, base_dir, env_rel)
                text = read.text(env_path)
                if text is None:
                    if env_files is not None:
                        raise _error(file, lines, (*where, "env_file"), f"env file {env_path!r} not found")
                    continue
                try:
                    own.update(parse_dotenv(text, env))
                except DotenvError as exc:
                    raise DesiredStateError(str(exc), Location(env_path, exc.line)) from None
            inc_env = {**own, **env}
            if read.text(target) is None:
                raise _error(file, lines, where, f"included file {target!r} not found")
            doc = read.yaml(target)
            out.append(IncludedFile(doc.data, doc.lines, target, inc_dir, inc_env))
            _walk(read, inc_dir, target, doc.data, doc.lines, inc_env, out, (*chain, target))


def _strings(file: str, lines: LineMap, where: KeyPath, value: object, env: Mapping[str, str]) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [_text(file, lines, where, item, env) for item in items]


def _text(file: str, lines: LineMap, where: KeyPath, value: object, env: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not value:
        raise _error(file, lines, where, "must be a path (a non-empty string)")
    try:
        return interpolate(value, env)
    except InterpolationError as exc:
        raise _error(file, lines, where, str(exc)) from None


def _confined(file: str, lines: LineMap, where: KeyPath, base_dir: str, raw: str) -> str:
    try:
        return repo_relative(base_dir, raw)
    except PathEscapeError as exc:
        raise _error(file, lines, where, f"include: {exc}") from None


def _error(file: str, lines: LineMap, path: KeyPath, message: str) -> DesiredStateError:
    return DesiredStateError(message, Location(file, line_of(lines, path), format_path(path)))
