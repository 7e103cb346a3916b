"""Git that its own content cannot steer (DESIGN.md §9, issue 10).

The cache clone's ``.git`` is the agent's, but anything that could write into it
(a container that saw it, a bug) must not thereby run a program on the host the
next time the agent runs git. Three layers, applied to every git command:

1. command-scope settings (``GIT_CONFIG_COUNT``, the highest-priority scope) that
   switch off every program git could start on its own: hooks, fsmonitor,
   pager, editor, askpass, credential helpers, the git:// proxy, submodules,
   and every transport but the configured URL's;
2. no system or global config or attributes (``GIT_CONFIG_NOSYSTEM``,
   ``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_ATTR_NOSYSTEM``, ``core.attributesFile``);
3. the repository's own ``.git/config`` is rewritten to a known text whenever
   it differs, and a ``commondir`` redirect is removed: ``-c`` cannot unset keys
   it does not know (``filter.<any>.smudge``, ``include.path``,
   ``url.<any>.insteadOf``, ``core.worktree``), so their only home is taken away;
   object alternates (objects read from any host directory) go the same way.
   A filter named by a committed ``.gitattributes`` then has no command and
   git passes the content through unchanged.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# The only text the cache clone's config may hold (what `git init` writes plus
# our two settings); compared before every command, rewritten only when it differs.
KNOWN_CONFIG = (
    "[core]\n"
    "\trepositoryformatversion = 0\n"
    "\tfilemode = true\n"
    "\tbare = false\n"
    "\tlogallrefupdates = false\n"
    "[gc]\n"
    "\tautoDetach = false\n"
)

# Settings that name a program git would run: each set to "none".
SAFE_SETTINGS: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),  # no hook runs: post-checkout, reference-transaction, ...
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("core.editor", "true"),
    ("sequence.editor", "true"),
    ("core.askPass", ""),
    ("core.gitProxy", ""),  # git:// through a proxy command
    ("core.sshCommand", "ssh"),  # GIT_SSH_COMMAND (always set) wins anyway
    ("core.attributesFile", os.devnull),
    ("credential.helper", ""),  # empty resets the list: no stored credentials
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("diff.external", ""),
    ("gc.auto", "0"),  # no background maintenance spawned by fetch
    ("maintenance.auto", "false"),
    ("protocol.allow", "never"),  # every transport refused but the configured one (below)
    ("protocol.ext.allow", "never"),  # ext:: runs arbitrary commands
)

_SCHEMES = {"https": "https", "http": "http", "ssh": "ssh", "git": "git", "file": "file",
            "git+ssh": "ssh", "ssh+git": "ssh"}  # fmt: skip


def url_scheme(url: str) -> str:
    """The transport git will use for ``url`` (after ``normalise_url``): a local path is ``file``."""
    head, sep, _ = url.partition("://")
    if sep:
        return _SCHEMES.get(head.lower(), head.lower())
    first = url.split("/", 1)[0]
    return "ssh" if ":" in first else "file"


def safe_settings(url: str) -> list[tuple[str, str]]:
    """Command-scope settings for a command that talks to ``url`` (or none, for local work).

    Only ``url``'s transport is allowed (an http remote may still redirect up to https).
    """
    scheme = url_scheme(url)
    allowed = [scheme, "https"] if scheme == "http" else [scheme]
    return [*SAFE_SETTINGS, *((f"protocol.{s}.allow", "always") for s in allowed)]


def safe_env() -> dict[str, str]:
    """Environment for every git process: no system/global config or attributes, no prompts."""
    return {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "GIT_EDITOR": "true",
        "GIT_TEMPLATE_DIR": "",  # `git init` copies no sample hooks
    }


def config_env(settings: list[tuple[str, str]]) -> dict[str, str]:
    """``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``: command scope, never in argv or on disk."""
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for i, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def guard_git_dir(git_dir: Path) -> bool:
    """Put ``git_dir``'s config back to ``KNOWN_CONFIG`` and drop redirects; True if it had to.

    Reads one small file when nothing is wrong (a quiet poll writes nothing).
    A ``.git`` that is not a plain directory is the caller's to wipe.
    """
    repaired = False
    config = git_dir / "config"
    try:
        current = config.read_text(encoding="utf-8") if not config.is_symlink() else None
    except (OSError, UnicodeDecodeError):
        current = None
    if current != KNOWN_CONFIG:
        if config.is_symlink() or config.is_dir():
            _remove(config)
        tmp = git_dir / "config.gitops-edge.tmp"
        tmp.write_text(KNOWN_CONFIG, encoding="utf-8")
        os.replace(tmp, config)
        repaired = current is not None
    for redirect in ("commondir", "config.worktree", "objects/info/alternates", "objects/info/http-alternates"):
        path = git_dir / redirect
        if path.exists() or path.is_symlink():
            _remove(path)
            repaired = True
    return repaired


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
