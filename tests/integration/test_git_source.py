"""GitRepoSource against real git: local paths, file://, git daemon, smart HTTP."""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.adapters.git.source import GitRepoSource
from gitops_edge.errors import RefNotFoundError, SourceError
from gitops_edge.model.config import SourceConfig
from tests.conftest import commit_files, git
from tests.support.git_servers import git_daemon, git_http_server, silent_tcp_server


def make_source(url: str | Path, cache: Path, ref: str = "main", **kw: Any) -> GitRepoSource:
    return GitRepoSource(SourceConfig(url=str(url), ref=ref, **kw), cache)


def git_rc(cwd: Path, *args: str) -> int:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60).returncode


def head_of(root: Path) -> str:
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def bare(tmp_path: Path, git_repo: Path) -> Path:
    """A bare repository under tmp_path/srv, fed by pushes from ``git_repo``."""
    commit_files(git_repo, {"stacks/app/compose.yaml": "services: {}\n"}, "first")
    srv = tmp_path / "srv"
    srv.mkdir()
    git(srv, "clone", "-q", "--bare", str(git_repo), "fleet.git")
    git(git_repo, "remote", "add", "origin", str(srv / "fleet.git"))
    return srv / "fleet.git"


# -- refs -----------------------------------------------------------------------------


def test_branch_checkout_is_shallow_detached_and_clean(git_repo: Path, cache: Path) -> None:
    commit_files(git_repo, {"a.txt": "1"}, "one")
    sha = commit_files(git_repo, {"a.txt": "2", "stacks/x/compose.yaml": "services: {}\n"}, "two")
    src = make_source(git_repo, cache)

    assert src.remote_revision() == sha
    co = src.checkout()

    assert (co.revision, co.changed) == (sha, True)
    assert (co.root / "a.txt").read_text() == "2"
    assert (co.root / "stacks/x/compose.yaml").exists()
    assert head_of(co.root) == sha
    assert git(co.root, "rev-list", "--count", "HEAD") == "1"  # depth 1
    assert git_rc(co.root, "symbolic-ref", "-q", "HEAD") == 1  # detached
    assert git(co.root, "status", "--porcelain", "--ignored") == ""


def test_lightweight_and_annotated_tags_resolve_to_the_commit(git_repo: Path, cache: Path) -> None:
    light = commit_files(git_repo, {"v": "light"}, "light")
    git(git_repo, "tag", "v-light")
    annotated = commit_files(git_repo, {"v": "annotated"}, "annotated")
    git(git_repo, "tag", "-a", "v-ann", "-m", "release")
    commit_files(git_repo, {"v": "tip"}, "tip")

    for tag, want, content in (("v-light", light, "light"), ("v-ann", annotated, "annotated")):
        src = make_source(f"file://{git_repo}", cache / tag, ref=tag)
        assert src.remote_revision() == want
        co = src.checkout()
        assert co.revision == want
        assert (co.root / "v").read_text() == content


def test_branch_wins_over_tag_of_the_same_name(git_repo: Path, cache: Path) -> None:
    tagged = commit_files(git_repo, {"f": "tag"}, "tagged")
    git(git_repo, "tag", "-a", "release", "-m", "t")
    branched = commit_files(git_repo, {"f": "branch"}, "branched")
    git(git_repo, "branch", "release")
    assert tagged != branched

    assert make_source(git_repo, cache, ref="release").remote_revision() == branched
    assert make_source(git_repo, cache, ref="refs/tags/release").remote_revision() == tagged


def test_full_sha_needs_no_network_and_checks_out_an_old_commit(
    git_repo: Path, cache: Path, tmp_path: Path
) -> None:
    old = commit_files(git_repo, {"f": "old"}, "old")
    commit_files(git_repo, {"f": "new"}, "new")

    assert make_source(tmp_path / "nowhere", cache, ref=old).remote_revision() == old
    co = make_source(f"file://{git_repo}", cache, ref=old).checkout()
    assert co.revision == old
    assert (co.root / "f").read_text() == "old"


def test_abbreviated_sha_is_resolved_by_fetching(git_repo: Path, cache: Path) -> None:
    old = commit_files(git_repo, {"f": "old"}, "old")
    commit_files(git_repo, {"f": "mid"}, "mid")
    commit_files(git_repo, {"f": "new"}, "new")
    src = make_source(git_repo, cache, ref=old[:9])

    assert src.remote_revision() == old
    co = src.checkout()
    assert co.revision == old
    assert (co.root / "f").read_text() == "old"
    assert src.checkout().changed is False


def test_missing_ref_is_a_permanent_source_error(git_repo: Path, cache: Path) -> None:
    commit_files(git_repo, {"f": "x"})
    for ref in ("no-such-branch", "deadbeef123", "a" * 40):
        src = make_source(git_repo, cache, ref=ref)
        with pytest.raises(RefNotFoundError) as info:
            src.checkout()
        assert info.value.retryable is False
        assert info.value.exit_code == 4
        assert isinstance(info.value, SourceError)


# -- polling --------------------------------------------------------------------------


def test_moved_ref_is_changed_and_new_files_appear(git_repo: Path, cache: Path) -> None:
    first = commit_files(git_repo, {"stacks/a/compose.yaml": "services: {}\n"}, "a")
    src = make_source(git_repo, cache)
    assert src.checkout().revision == first

    again = src.checkout()
    assert (again.revision, again.changed) == (first, False)

    second = commit_files(
        git_repo, {"stacks/b/compose.yaml": "services: {}\n", "stacks/a/compose.yaml": None}, "b"
    )
    moved = src.checkout()
    assert (moved.revision, moved.changed) == (second, True)
    assert (moved.root / "stacks/b/compose.yaml").exists()
    assert not (moved.root / "stacks/a").exists()


def test_changed_survives_a_restart_of_the_agent(git_repo: Path, cache: Path) -> None:
    commit_files(git_repo, {"f": "1"})
    assert make_source(git_repo, cache).checkout().changed is True
    assert make_source(git_repo, cache).checkout().changed is False


def test_untracked_ignored_and_modified_files_are_wiped(git_repo: Path, cache: Path) -> None:
    commit_files(git_repo, {"keep.txt": "original", ".gitignore": "*.log\n"})
    src = make_source(git_repo, cache)
    root = src.checkout().root

    (root / "keep.txt").write_text("tampered")
    (root / "junk.txt").write_text("junk")
    (root / "debug.log").write_text("ignored junk")
    (root / "newdir/deep").mkdir(parents=True)
    (root / "newdir/deep/x").write_text("x")

    co = src.checkout()
    assert co.changed is False
    assert (root / "keep.txt").read_text() == "original"
    assert not (root / "junk.txt").exists()
    assert not (root / "debug.log").exists()
    assert not (root / "newdir").exists()


def test_deleted_tracked_file_is_restored(git_repo: Path, cache: Path) -> None:
    commit_files(git_repo, {"keep.txt": "original"})
    src = make_source(git_repo, cache)
    root = src.checkout().root
    (root / "keep.txt").unlink()
    src.checkout()
    assert (root / "keep.txt").read_text() == "original"


# -- healing --------------------------------------------------------------------------


def test_force_push_of_unrelated_history_heals(bare: Path, git_repo: Path, cache: Path) -> None:
    src = make_source(f"file://{bare}", cache)
    first = src.checkout()

    git(git_repo, "checkout", "-q", "--orphan", "rewrite")
    git(git_repo, "rm", "-rq", "--cached", ".")
    for p in git_repo.iterdir():
        if p.name != ".git":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    unrelated = commit_files(git_repo, {"other/compose.yaml": "services: {}\n"}, "unrelated")
    git(git_repo, "push", "-q", "-f", "origin", "rewrite:main")
    assert git_rc(git_repo, "merge-base", first.revision, unrelated) == 1  # no common history

    co = src.checkout()
    assert (co.revision, co.changed) == (unrelated, True)
    assert (co.root / "other/compose.yaml").exists()
    assert not (co.root / "stacks").exists()


@pytest.mark.parametrize(
    "damage",
    ["objects", "head", "directory", "index_lock", "index", "git_dir_file"],
)
def test_corrupt_clone_heals(
    git_repo: Path, cache: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    sha = commit_files(git_repo, {"stacks/a/compose.yaml": "services: {}\n"})
    src = make_source(git_repo, cache)
    root = src.checkout().root
    dot_git = root / ".git"

    if damage == "objects":
        for d in (dot_git / "objects").iterdir():
            if d.name != "info":
                shutil.rmtree(d)
    elif damage == "head":
        (dot_git / "HEAD").write_text("garbage\n")
    elif damage == "directory":
        shutil.rmtree(root)
    elif damage == "index_lock":  # power loss in the middle of a checkout
        (dot_git / "index.lock").write_text("")
        (root / "stacks/a/compose.yaml").write_text("half-written")
    elif damage == "index":
        (dot_git / "index").write_bytes(b"\0garbage" * 10)
    elif damage == "git_dir_file":
        shutil.rmtree(dot_git)
        dot_git.write_text("gitdir: /nonexistent\n")

    with caplog.at_level(logging.WARNING, logger="gitops_edge.adapters.git.source"):
        co = src.checkout()
    healed = any("re-cloning" in r.getMessage() for r in caplog.records)
    assert healed is (damage not in ("directory", "git_dir_file"))
    assert co.revision == sha
    assert co.changed is False
    assert (co.root / "stacks/a/compose.yaml").read_text() == "services: {}\n"
    assert git(co.root, "status", "--porcelain", "--ignored") == ""

    newer = commit_files(git_repo, {"b.txt": "b"})
    assert src.checkout().revision == newer


def test_objects_damaged_while_the_ref_moved_heals(git_repo: Path, cache: Path) -> None:
    commit_files(git_repo, {"a": "1"})
    src = make_source(git_repo, cache)
    root = src.checkout().root
    for d in (root / ".git/objects").iterdir():
        if d.name != "info":
            shutil.rmtree(d)
    newer = commit_files(git_repo, {"a": "2"})
    co = src.checkout()
    assert (co.revision, co.changed) == (newer, True)
    assert (co.root / "a").read_text() == "2"


# -- failures -------------------------------------------------------------------------


@pytest.mark.parametrize("bad_url", ["git://127.0.0.1:1/x", "/nonexistent/fleet.git",
                                     "file:///nonexistent/fleet.git", "http://127.0.0.1:1/x.git"])
def test_unreachable_remote_keeps_previous_checkout(
    git_repo: Path, cache: Path, bad_url: str
) -> None:
    sha = commit_files(git_repo, {"stacks/a/compose.yaml": "services: {}\n"})
    good = make_source(git_repo, cache).checkout()

    bad = make_source(bad_url, cache, timeout_s=10)
    for call in (bad.remote_revision, bad.checkout):
        with pytest.raises(SourceError) as info:
            call()
        assert info.value.retryable is True
        assert "\n" not in str(info.value)
    assert head_of(good.root) == sha
    assert (good.root / "stacks/a/compose.yaml").exists()


def test_hanging_remote_times_out(git_repo: Path, cache: Path) -> None:
    with silent_tcp_server() as port:
        src = make_source(f"git://127.0.0.1:{port}/fleet.git", cache, timeout_s=1.5)
        started = time.monotonic()
        with pytest.raises(SourceError, match="timed out"):
            src.checkout()
        assert time.monotonic() - started < 15


def test_git_daemon_transport(bare: Path, git_repo: Path, cache: Path) -> None:
    with git_daemon(bare.parent) as base:
        src = make_source(f"{base}/fleet.git", cache)
        first = src.checkout()
        assert first.revision == git(bare, "rev-parse", "main")
        newer = commit_files(git_repo, {"d.txt": "daemon"})
        git(git_repo, "push", "-q", "origin", "main")
        co = src.checkout()
        assert (co.revision, co.changed) == (newer, True)
        assert (co.root / "d.txt").read_text() == "daemon"


# -- HTTP with a token ----------------------------------------------------------------

TOKEN = "s3cr3t-t0ken-value"


def _basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def test_http_token_auth_and_no_fetch_when_nothing_moved(
    bare: Path, git_repo: Path, cache: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with git_http_server(bare.parent, authorization=_basic("git", TOKEN)) as server:
        src = make_source(server.url("fleet.git"), cache, token_file=token_file)
        first = src.checkout()
        assert first.revision == git(bare, "rev-parse", "main")
        assert server.commands.count("fetch") == 1

        for _ in range(3):
            assert src.checkout().changed is False
        assert server.commands.count("fetch") == 1  # polls saw only ls-refs
        assert server.commands.count("ls-refs") == 4

        newer = commit_files(git_repo, {"h.txt": "http"})
        git(git_repo, "push", "-q", "origin", "main")
        co = src.checkout()
        assert (co.revision, co.changed) == (newer, True)
        assert server.commands.count("fetch") == 2

    for f in (first.root / ".git").rglob("*"):
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes(), f
            assert _basic("git", TOKEN).split()[1].encode() not in f.read_bytes(), f


def test_http_wrong_or_missing_token_is_a_source_error_without_the_token(
    bare: Path, cache: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-token-value")
    with git_http_server(bare.parent, authorization=_basic("git", TOKEN)) as server:
        attempts: list[dict[str, Any]] = [{"token_file": wrong}, {}]
        for kw in attempts:
            src = make_source(server.url("fleet.git"), cache, timeout_s=10, **kw)
            with pytest.raises(SourceError) as info:
                src.checkout()
            msg = str(info.value)
            assert "wrong-token-value" not in msg and TOKEN not in msg
            assert "\n" not in msg
            assert info.value.retryable is True
        assert server.rejected >= 2


def test_http_token_file_is_reread_each_sync(bare: Path, cache: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old-token")
    with git_http_server(bare.parent, authorization=_basic("git", "old-token")) as server:
        src = make_source(server.url("fleet.git"), cache, token_file=token_file)
        src.checkout()
        server.authorization = _basic("git", "new-token")
        token_file.write_text("new-token")
        assert src.checkout().changed is False


def test_unreadable_token_file_is_a_source_error(bare: Path, cache: Path, tmp_path: Path) -> None:
    with git_http_server(bare.parent) as server:
        src = make_source(server.url("fleet.git"), cache, token_file=tmp_path / "missing")
        with pytest.raises(SourceError, match="token file"):
            src.checkout()


def test_password_in_url_never_reaches_a_message(cache: Path) -> None:
    src = make_source("http://user:hunter2@127.0.0.1:1/x.git", cache, timeout_s=5)
    with pytest.raises(SourceError) as info:
        src.remote_revision()
    assert "hunter2" not in str(info.value)


def test_server_refusing_unadvertised_sha_falls_back_to_a_full_fetch(
    bare: Path, git_repo: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Protocol v0 upload-pack refuses a sha no ref points at: depth-1 by sha fails."""
    old = git(bare, "rev-parse", "main")
    commit_files(git_repo, {"f": "new"})
    git(git_repo, "push", "-q", "origin", "main")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'protocol.version'='0'")
    with git_daemon(bare.parent) as base:
        url = f"{base}/fleet.git"
        tip = make_source(url, cache).checkout()
        assert (tip.root / ".git/shallow").exists()

        co = make_source(url, cache, ref=old).checkout()
        assert (co.revision, co.changed) == (old, True)
        assert (co.root / "stacks/app/compose.yaml").exists()
        assert not (co.root / "f").exists()
        assert not (co.root / ".git/shallow").exists()  # it took the --unshallow path


def test_ref_moving_between_ls_remote_and_fetch_takes_the_new_commit(
    bare: Path, git_repo: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With v0, the ls-remote'd sha is no longer advertised at fetch time: fetch by name."""
    commit_files(git_repo, {"f": "raced"}, "raced")
    git(git_repo, "push", "-q", "origin", "HEAD:refs/heads/next")
    raced = git(bare, "rev-parse", "next")
    first = git(bare, "rev-parse", "main")
    calls = tmp_path / "calls"
    hook = tmp_path / "hook.sh"
    # Second request (the fetch, after the ls-remote): main moves to the raced commit.
    hook.write_text(
        f"#!/bin/sh\necho x >> {calls}\n"
        f"[ $(wc -l < {calls}) -eq 2 ] && git --git-dir={bare} update-ref refs/heads/main {raced}\n"
        "exit 0\n"
    )
    hook.chmod(0o755)
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'protocol.version'='0'")
    with git_daemon(bare.parent, access_hook=hook) as base:
        src = make_source(f"{base}/fleet.git", cache)
        co = src.checkout()
    assert first != raced
    assert co.revision == raced
    assert (co.root / "f").read_text() == "raced"
    assert (co.root / ".git/shallow").exists()  # by name, still depth 1
    assert len(calls.read_text().splitlines()) == 3  # ls-remote, refused sha, by name


# -- what a no-change poll costs ------------------------------------------------------


def _prefixes(body: bytes) -> list[str]:
    return re.findall(r"ref-prefix (\S+)", body.decode("latin-1"))


def test_no_change_poll_asks_the_server_for_branches_only(
    bare: Path, git_repo: Path, cache: Path
) -> None:
    """50 tags on the server cost a branch poll nothing: ls-refs carries ref-prefix refs/heads/."""
    for i in range(50):
        git(git_repo, "tag", f"release-{i}")
    git(git_repo, "push", "-q", "origin", "main", "--tags")
    with git_http_server(bare.parent) as server:
        src = make_source(server.url("fleet.git"), cache)
        applied = src.checkout().revision
        server.ls_refs.clear()
        server.sent = 0
        assert src.checkout(applied).changed is False
        assert [_prefixes(b) for b in server.ls_refs] == [["refs/heads/"]]
        assert server.sent < 1024  # capabilities + one ref; all 50 tags would be ~3.5 KiB


def test_tag_ref_is_polled_in_one_request_and_a_new_branch_still_wins(
    bare: Path, git_repo: Path, cache: Path
) -> None:
    tagged = commit_files(git_repo, {"f": "tag"}, "tagged")
    git(git_repo, "tag", "-a", "release", "-m", "t")
    git(git_repo, "push", "-q", "origin", "main", "--tags")
    with git_http_server(bare.parent) as server:
        src = make_source(server.url("fleet.git"), cache, ref="release")
        assert src.checkout().revision == tagged  # first: branches, then tags
        assert [_prefixes(b) for b in server.ls_refs] == [["refs/heads/"], ["refs/tags/"]]
        server.ls_refs.clear()
        assert make_source(server.url("fleet.git"), cache, ref="release").checkout(tagged).changed is False
        assert [sorted(_prefixes(b)) for b in server.ls_refs] == [["refs/heads/", "refs/tags/"]]

        branched = commit_files(git_repo, {"f": "branch"}, "branched")
        git(git_repo, "push", "-q", "origin", "HEAD:refs/heads/release")
        co = make_source(server.url("fleet.git"), cache, ref="release", allow_rewind=True).checkout(tagged)
        assert (co.revision, co.changed) == (branched, True)


@pytest.fixture
def git_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``git`` on PATH that logs each subcommand the agent starts, then runs the real one."""
    real = shutil.which("git")
    assert real is not None
    bin_dir, log = tmp_path / "bin", tmp_path / "git-calls"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def test_no_change_poll_starts_ls_remote_and_one_local_git(
    git_repo: Path, cache: Path, git_calls: Path
) -> None:
    commit_files(git_repo, {"stacks/a/compose.yaml": "services: {}\n"})
    src = make_source(f"file://{git_repo}", cache)
    applied = src.checkout().revision
    git_calls.write_text("")
    co = make_source(f"file://{git_repo}", cache).checkout(applied)  # as each daemon tick: a new source
    assert (co.revision, co.changed) == (applied, False)
    assert git_calls.read_text().split() == ["ls-remote", "status"]


def test_moved_ref_is_one_fetch_and_a_few_local_gits(git_repo: Path, cache: Path, git_calls: Path) -> None:
    """A fast-forward (the common update): no `status` (the tree is cleaned anyway), one batch
    lookup before and after the fetch, the descent check, clean, checkout, one ref deletion."""
    commit_files(git_repo, {"stacks/a/compose.yaml": "services: {}\n"})
    applied = make_source(f"file://{git_repo}", cache).checkout().revision
    newer = commit_files(git_repo, {"stacks/a/compose.yaml": "services: {a: {image: x}}\n"})
    root = cache / "repo"
    (root / "stacks/a/compose.yaml").write_text("tampered")
    (root / "junk").write_text("untracked")
    git_calls.write_text("")
    co = make_source(f"file://{git_repo}", cache).checkout(applied)
    assert (co.revision, co.changed) == (newer, True)
    calls = git_calls.read_text().split()
    assert calls == ["ls-remote", "cat-file", "fetch", "cat-file", "merge-base", "clean", "-c", "update-ref"], calls
    assert (co.root / "stacks/a/compose.yaml").read_text() == "services: {a: {image: x}}\n"
    assert not (co.root / "junk").exists()
    assert git(co.root, "status", "--porcelain", "--ignored") == ""
    assert git(co.root, "for-each-ref", "refs/gitops-edge/") == ""  # nothing keeps old commits alive


def test_no_change_poll_still_restores_an_edited_checkout(git_repo: Path, cache: Path) -> None:
    sha = commit_files(git_repo, {"stacks/a/compose.yaml": "services: {}\n"})
    src = make_source(git_repo, cache)
    root = src.checkout().root
    (root / "stacks/a/compose.yaml").write_text("services: {evil: {image: x}}\n")
    git(root, "checkout", "-q", "--detach", "HEAD")  # HEAD stays; only the file differs
    co = src.checkout(sha)
    assert (co.revision, co.changed) == (sha, False)
    assert (co.root / "stacks/a/compose.yaml").read_text() == "services: {}\n"
