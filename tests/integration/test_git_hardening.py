"""Git that its own content cannot steer: nothing planted in the cache clone runs (issue 10).

Each case plants one way of making git start a program (a hook, a config key,
an include, a filter named by a committed ``.gitattributes``, a submodule) in
the agent's cache clone, every program touching a marker file. A control first
shows, with plain git on a copy of the planted clone, that the plant is live;
then the agent syncs (fetch and checkout of a new commit, an abbreviated ref,
a quiet poll) through ``GitRepoSource`` and no marker may appear.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.adapters.git.hardening import KNOWN_CONFIG
from gitops_edge.adapters.git.source import GitRepoSource
from gitops_edge.errors import SourceError
from gitops_edge.model.config import SourceConfig
from tests.conftest import commit_files, git


def _source(url: str | Path, cache: Path, ref: str = "main", **kw: Any) -> GitRepoSource:
    return GitRepoSource(SourceConfig(url=str(url), ref=ref, **kw), cache)


def _script(path: Path, marker: Path, passthrough: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\ntouch {marker}\n" + ("cat\n" if passthrough else ""))
    path.chmod(0o755)
    return path


@dataclass(frozen=True)
class Plant:
    name: str
    plant: Callable[[Path, Path, Path], None]  # (git dir, scripts dir, marker)
    control: tuple[str, ...]  # plain git in a copy of the clone: fires the marker


def _hook(hook: str) -> Plant:
    def plant(git_dir: Path, scripts: Path, marker: Path) -> None:
        _script(git_dir / "hooks" / hook, marker)

    return Plant(f"hook {hook}", plant, ("hook", "run", hook))


def _config(text: str) -> Callable[[Path, Path, Path], None]:
    """Append ``text`` to .git/config; ``{script}`` becomes a marker-touching program."""

    def plant(git_dir: Path, scripts: Path, marker: Path) -> None:
        script = _script(scripts / marker.name, marker, passthrough="filter" in text)
        with (git_dir / "config").open("a") as f:
            f.write(text.format(script=script, scripts=scripts))

    return plant


def _hooks_path(git_dir: Path, scripts: Path, marker: Path) -> None:
    _script(scripts / "hooks" / "post-checkout", marker)
    _script(scripts / "hooks" / "reference-transaction", marker)
    with (git_dir / "config").open("a") as f:
        f.write(f"[core]\n\thooksPath = {scripts / 'hooks'}\n")


def _include(git_dir: Path, scripts: Path, marker: Path) -> None:
    script = _script(scripts / "fsmon", marker)
    included = scripts / "included.cfg"
    included.write_text(f"[core]\n\tfsmonitor = {script}\n")
    with (git_dir / "config").open("a") as f:
        f.write(f"[include]\n\tpath = {included}\n")


PLANTS = [
    _hook("post-checkout"),
    _hook("post-merge"),
    _hook("reference-transaction"),
    _hook("fsmonitor-watchman"),
    _hook("post-index-change"),
    Plant("core.fsmonitor", _config("[core]\n\tfsmonitor = {script}\n"), ("status",)),
    Plant("core.hooksPath", _hooks_path, ("hook", "run", "post-checkout")),
    Plant("include.path", _include, ("status",)),
    Plant("core.sshCommand", _config("[core]\n\tsshCommand = {script}\n"),
          ("ls-remote", "ssh://127.0.0.1:1/fleet.git")),
    Plant("core.pager", _config("[core]\n\tpager = {script}\n"), ("var", "GIT_PAGER")),
    Plant("filter smudge (.gitattributes in the repo)",
          _config('[filter "evil"]\n\tsmudge = {script}\n\tclean = {script}\n'),
          ("checkout", "-f", "--", "data.txt")),
    Plant("filter process", _config('[filter "evil"]\n\tprocess = {script}\n'),
          ("checkout", "-f", "--", "data.txt")),
]


@pytest.fixture
def fleet(git_repo: Path, tmp_path: Path) -> Path:
    """A repository whose committed .gitattributes names the filter ``evil`` for every file."""
    commit_files(git_repo, {
        ".gitattributes": "* filter=evil\n",
        "data.txt": "hello\n",
        "stacks/app/compose.yaml": "services: {}\n",
    }, "first")  # fmt: skip
    return git_repo


def _control(git_dir: Path, tmp_path: Path, plant: Plant, marker: Path) -> None:
    """Plain git on a copy of the planted clone fires the plant: it is a live one."""
    copy = tmp_path / "control"
    shutil.copytree(git_dir.parent, copy, symlinks=True)
    if plant.name.startswith("filter"):
        (copy / "data.txt").unlink()
    out = subprocess.run(["git", *plant.control], cwd=copy, capture_output=True, text=True, timeout=60)
    if plant.name == "core.pager":  # git only pages to a terminal: show it would use the script
        assert out.stdout.strip().endswith(marker.name), out
        return
    assert marker.exists(), f"control did not fire: {out.stderr}"
    marker.unlink()
    shutil.rmtree(copy)


@pytest.mark.parametrize("plant", PLANTS, ids=[p.name for p in PLANTS])
def test_nothing_planted_in_the_clone_runs(plant: Plant, fleet: Path, tmp_path: Path) -> None:
    cache, scripts, marker = tmp_path / "cache", tmp_path / "scripts", tmp_path / "fired"
    _source(fleet, cache).checkout()
    git_dir = cache / "repo" / ".git"
    plant.plant(git_dir, scripts, marker)
    _control(git_dir, tmp_path, plant, marker)

    new = commit_files(fleet, {"data.txt": "changed\n", "more.txt": "x\n"}, "second")
    co = _source(fleet, cache).checkout()  # fetch + checkout of a new commit
    assert co.revision == new and (co.root / "data.txt").read_text() == "changed\n"
    plant.plant(git_dir, scripts, marker)
    assert _source(fleet, cache).checkout().changed is False  # a quiet poll: git status
    plant.plant(git_dir, scripts, marker)
    newer = commit_files(fleet, {"data.txt": "third\n"}, "third")
    assert _source(fleet, cache, ref=newer[:10]).remote_revision() == newer  # abbreviated: fetch all
    plant.plant(git_dir, scripts, marker)
    with pytest.raises(SourceError):  # an ssh remote: our ssh command, never the planted one
        _source("ssh://127.0.0.1:1/fleet.git", cache, ref="f" * 40, timeout_s=5).checkout()

    assert not marker.exists(), f"{plant.name} ran a program"
    assert (git_dir / "config").read_text() == KNOWN_CONFIG


def test_a_committed_submodule_is_never_followed(fleet: Path, tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    git(inner, "init", "-q", "-b", "main")
    commit_files(inner, {"inner.txt": "from the submodule\n"}, "inner")
    git(fleet, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "sub")
    git(fleet, "commit", "-q", "-m", "add a submodule")
    cache = tmp_path / "cache"
    _source(fleet, cache).checkout()
    with (cache / "repo/.git/config").open("a") as f:
        f.write("[submodule]\n\trecurse = true\n[protocol]\n\tallow = always\n")
    commit_files(fleet, {"data.txt": "changed\n"}, "second")

    co = _source(fleet, cache).checkout()

    assert (co.root / "data.txt").read_text() == "changed\n"
    assert not (co.root / "sub/inner.txt").exists()
    assert not (co.root / ".git/modules").exists()
    # control: plain git with the same settings does follow it
    copy = tmp_path / "control"
    shutil.copytree(co.root, copy, symlinks=True)
    git(copy, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    assert (copy / "sub/inner.txt").exists()


def test_a_dot_git_that_is_a_symlink_or_redirected_is_replaced(fleet: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _source(fleet, cache).checkout()
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(cache / "repo/.git"), elsewhere)
    (cache / "repo/.git").symlink_to(elsewhere)
    marker = tmp_path / "fired"
    _script(elsewhere / "hooks/post-checkout", marker)
    (elsewhere / "commondir").write_text(str(tmp_path / "common") + "\n")

    new = commit_files(fleet, {"data.txt": "changed\n"}, "second")
    co = _source(fleet, cache).checkout()

    assert co.revision == new
    assert not (co.root / ".git").is_symlink() and (co.root / ".git").is_dir()
    assert not marker.exists()


def test_redirects_inside_dot_git_are_removed(fleet: Path, tmp_path: Path) -> None:
    """``commondir`` moves where git reads config from; alternates read objects from any host dir."""
    cache = tmp_path / "cache"
    _source(fleet, cache).checkout()
    git_dir = cache / "repo/.git"
    common = tmp_path / "common"
    common.mkdir()
    marker = tmp_path / "fired"
    (common / "config").write_text(f"[core]\n\tfsmonitor = {_script(tmp_path / 'fsmon', marker)}\n")
    (git_dir / "commondir").write_text(f"{common}\n")
    (git_dir / "objects/info/alternates").write_text(f"{tmp_path / 'elsewhere/objects'}\n")
    commit_files(fleet, {"data.txt": "changed\n"}, "second")

    assert (_source(fleet, cache).checkout().root / "data.txt").read_text() == "changed\n"

    assert not (git_dir / "commondir").exists() and not (git_dir / "objects/info/alternates").exists()
    assert not marker.exists()
