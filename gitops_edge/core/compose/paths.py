"""Repository-relative paths: resolve like Compose, refuse to leave the repo.

Pure string work on POSIX paths (the adapter checks symlinks on disk). A
relative path resolves against the stack directory, as Compose resolves it
against the project directory.
"""

from __future__ import annotations

import posixpath


class PathEscapeError(ValueError):
    """A path points outside the repository."""


def repo_relative(stack_dir: str, raw: str) -> str:
    """``raw`` (relative to ``stack_dir``) as a normalized repo-relative path."""
    if posixpath.isabs(raw):
        raise PathEscapeError(f"absolute path {raw!r} is outside the repository")
    rel = posixpath.normpath(posixpath.join(stack_dir, raw))
    if rel == ".." or rel.startswith("../"):
        raise PathEscapeError(f"path {raw!r} leaves the repository")
    return rel


def host_path(root: str, stack_dir: str, raw: str) -> str:
    """Absolute host path for a bind source; relative ones must stay in the repo.

    An absolute path is kept as written, as Compose keeps it (policy checks
    normalize it themselves); a relative one is joined and cleaned.
    """
    if posixpath.isabs(raw):
        return raw
    rel = repo_relative(stack_dir, raw)
    return posixpath.normpath(posixpath.join(root, rel))
