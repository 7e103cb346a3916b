"""Signed commits and no-rewind in GitRepoSource, against real git, ssh-keygen and gpg."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.adapters.git.source import GitRepoSource
from gitops_edge.errors import TrustError
from gitops_edge.model.config import SourceConfig
from gitops_edge.model.trust import CommitVerification
from tests.conftest import commit_files, git
from tests.support.git_servers import git_daemon


def run_git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com", **(env or {}))  # fmt: skip
    out = subprocess.run(["git", *args], cwd=repo, env=full, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"git {' '.join(args)}: {out.stderr}"
    return out.stdout.strip()


def ssh_commit(repo: Path, key: Path, files: dict[str, str], message: str = "signed") -> str:
    for rel, content in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(content)
    run_git(repo, "add", "-A")
    run_git(repo, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q", "-S", "-m", message)
    return run_git(repo, "rev-parse", "HEAD")


def source(repo: Path, cache: Path, **kw: Any) -> GitRepoSource:
    return GitRepoSource(SourceConfig(url=f"file://{repo}", ref="main", **kw), cache)


@dataclass
class SshKeys:
    alice: Path  # private key; alice.pub is listed in `allowed`
    mallory: Path  # a valid key nobody allowed
    allowed: Path


@pytest.fixture
def keys(tmp_path: Path) -> SshKeys:
    d = tmp_path / "keys"
    d.mkdir()
    for name in ("alice", "mallory"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(d / name)],
                       check=True, timeout=30)  # fmt: skip
    allowed = d / "allowed_signers"
    allowed.write_text(f"alice@example.com {(d / 'alice.pub').read_text()}")
    return SshKeys(alice=d / "alice", mallory=d / "mallory", allowed=allowed)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def ssh_verify(keys: SshKeys) -> CommitVerification:
    return CommitVerification(mode="ssh", allowed_signers=keys.allowed)


# -- SSH signatures -----------------------------------------------------------------


def test_a_commit_signed_by_an_allowed_signer_passes_in_a_shallow_clone(
    git_repo: Path, cache: Path, keys: SshKeys
) -> None:
    commit_files(git_repo, {"old.txt": "x"}, "unsigned history is fine")
    sha = ssh_commit(git_repo, keys.alice, {"stacks/a/compose.yaml": "services: {}\n"})
    co = source(git_repo, cache, verify=ssh_verify(keys)).checkout()
    assert co.revision == sha
    assert (co.root / "stacks/a/compose.yaml").exists()
    assert (cache / "repo/.git/shallow").exists()  # depth 1: the signature is in the commit object


def test_an_unsigned_commit_is_refused_and_nothing_is_checked_out(
    git_repo: Path, cache: Path, keys: SshKeys
) -> None:
    good = ssh_commit(git_repo, keys.alice, {"a.txt": "good"})
    src = source(git_repo, cache, verify=ssh_verify(keys))
    src.checkout()
    bad = commit_files(git_repo, {"a.txt": "evil"}, "unsigned")
    with pytest.raises(TrustError, match=f"commit {bad[:12]} is not signed") as info:
        src.checkout()
    assert info.value.exit_code == 3
    assert git(cache / "repo", "rev-parse", "HEAD") == good
    assert (cache / "repo/a.txt").read_text() == "good"


def test_an_unsigned_commit_is_refused_on_a_fresh_cache(git_repo: Path, cache: Path, keys: SshKeys) -> None:
    commit_files(git_repo, {"a.txt": "evil"}, "unsigned")
    with pytest.raises(TrustError, match="is not signed"):
        source(git_repo, cache, verify=ssh_verify(keys)).checkout()
    assert not (cache / "repo/a.txt").exists()


def test_a_commit_signed_by_a_key_not_in_allowed_signers_is_refused(
    git_repo: Path, cache: Path, keys: SshKeys
) -> None:
    sha = ssh_commit(git_repo, keys.mallory, {"a.txt": "evil"})
    with pytest.raises(TrustError) as info:
        source(git_repo, cache, verify=ssh_verify(keys)).checkout()
    message = str(info.value)
    assert f"commit {sha[:12]} is signed by a key not in allowed_signers" in message
    assert "ED25519 key SHA256:" in message
    assert not (cache / "repo/a.txt").exists()


def test_an_ssh_signature_when_gpg_is_required_is_refused(git_repo: Path, cache: Path, keys: SshKeys) -> None:
    ssh_commit(git_repo, keys.alice, {"a.txt": "x"})
    policy = CommitVerification(mode="gpg", gpg_keyring=keys.allowed)
    with pytest.raises(TrustError, match=r"carries an SSH signature, but source\.verify\.mode is gpg"):
        source(git_repo, cache, verify=policy).checkout()


def test_a_missing_allowed_signers_file_refuses(git_repo: Path, cache: Path, keys: SshKeys) -> None:
    ssh_commit(git_repo, keys.alice, {"a.txt": "x"})
    policy = CommitVerification(mode="ssh", allowed_signers=keys.allowed.with_name("nope"))
    with pytest.raises(TrustError, match=r"allowed_signers file .*nope does not exist"):
        source(git_repo, cache, verify=policy).checkout()


def test_the_already_checked_out_commit_is_verified_too(git_repo: Path, cache: Path, keys: SshKeys) -> None:
    """Turning verify on for a device that already runs an unsigned commit refuses it."""
    commit_files(git_repo, {"a.txt": "x"}, "unsigned")
    source(git_repo, cache).checkout()
    with pytest.raises(TrustError, match="is not signed"):
        source(git_repo, cache, verify=ssh_verify(keys)).checkout()


# -- no rewind ----------------------------------------------------------------------


def history(repo: Path, n: int, tag: str = "c") -> list[str]:
    return [commit_files(repo, {"n.txt": f"{tag}{i}"}, f"{tag}{i}") for i in range(n)]


def commits_in_cache(cache: Path) -> int:
    return int(git(cache / "repo", "rev-list", "--count", "HEAD"))


@pytest.mark.parametrize("ahead", [1, 5])
def test_a_fast_forward_passes_and_fetches_only_the_new_commits(
    git_repo: Path, cache: Path, ahead: int
) -> None:
    applied = history(git_repo, 10)[-1]
    src = source(git_repo, cache)
    src.checkout()
    new = history(git_repo, ahead, "n")[-1]
    co = src.checkout(applied_revision=applied)
    assert co.revision == new and co.changed
    assert commits_in_cache(cache) == ahead + 1  # still shallow below the applied commit


def test_the_unchanged_ref_passes(git_repo: Path, cache: Path) -> None:
    applied = history(git_repo, 2)[-1]
    src = source(git_repo, cache)
    src.checkout()
    assert src.checkout(applied_revision=applied).revision == applied


def test_a_force_push_to_an_older_commit_is_refused(git_repo: Path, cache: Path) -> None:
    shas = history(git_repo, 6)
    src = source(git_repo, cache)
    src.checkout()
    git(git_repo, "reset", "-q", "--hard", shas[2])
    with pytest.raises(TrustError) as info:
        src.checkout(applied_revision=shas[-1])
    assert str(info.value) == (
        f"ref main moved from {shas[-1][:12]} to {shas[2][:12]}, which does not descend from it: "
        "refusing a rewind (set source.allow_rewind to accept)"
    )
    assert info.value.exit_code == 3
    assert git(cache / "repo", "rev-parse", "HEAD") == shas[-1]  # the work tree was not touched


def test_a_force_push_to_unrelated_history_is_refused(git_repo: Path, cache: Path) -> None:
    applied = history(git_repo, 3)[-1]
    src = source(git_repo, cache)
    src.checkout()
    git(git_repo, "checkout", "-q", "--orphan", "other")
    history(git_repo, 3, "o")
    git(git_repo, "branch", "-q", "-M", "other", "main")
    with pytest.raises(TrustError, match="refusing a rewind"):
        src.checkout(applied_revision=applied)


def test_allow_rewind_accepts_an_older_commit(git_repo: Path, cache: Path) -> None:
    shas = history(git_repo, 4)
    source(git_repo, cache).checkout()
    git(git_repo, "reset", "-q", "--hard", shas[0])
    co = source(git_repo, cache, allow_rewind=True).checkout(applied_revision=shas[-1])
    assert co.revision == shas[0]


def test_without_an_applied_revision_anything_goes(git_repo: Path, cache: Path) -> None:
    shas = history(git_repo, 3)
    source(git_repo, cache).checkout()
    git(git_repo, "reset", "-q", "--hard", shas[0])
    assert source(git_repo, cache).checkout().revision == shas[0]


def test_descent_across_a_shallow_boundary_is_found(git_repo: Path, cache: Path) -> None:
    """Applied A; a depth-1 checkout of a later S (apply failed); then T after S: T descends from A."""
    applied = history(git_repo, 3)[-1]
    src = source(git_repo, cache)
    src.checkout()
    history(git_repo, 4, "s")
    src.checkout()  # no applied revision: S arrives at depth 1, a second shallow boundary
    new = history(git_repo, 2, "t")[-1]
    assert src.checkout(applied_revision=applied).revision == new


def test_a_rewind_to_a_commit_the_cache_holds_shallow_is_refused(git_repo: Path, cache: Path) -> None:
    """The older commit is already in the cache, at a shallow boundary: history must be fetched to judge."""
    shas = history(git_repo, 5)
    src = source(git_repo, cache)
    git(git_repo, "reset", "-q", "--hard", shas[1])
    src.checkout()  # the cache holds shas[1] at depth 1 (say, from a rollback test)
    git(git_repo, "reset", "-q", "--hard", shas[-1])
    src.checkout(applied_revision=shas[1])
    git(git_repo, "reset", "-q", "--hard", shas[1])
    with pytest.raises(TrustError, match="refusing a rewind"):
        src.checkout(applied_revision=shas[-1])


def test_a_fresh_cache_checks_descent_too(git_repo: Path, cache: Path) -> None:
    shas = history(git_repo, 5)
    assert source(git_repo, cache).checkout(applied_revision=shas[2]).revision == shas[-1]
    shutil.rmtree(cache)
    git(git_repo, "reset", "-q", "--hard", shas[1])
    with pytest.raises(TrustError, match="refusing a rewind"):
        source(git_repo, cache).checkout(applied_revision=shas[-1])


def test_signature_and_descent_are_both_required(git_repo: Path, cache: Path, keys: SshKeys) -> None:
    first = ssh_commit(git_repo, keys.alice, {"a.txt": "1"})
    second = ssh_commit(git_repo, keys.alice, {"a.txt": "2"})
    src = source(git_repo, cache, verify=ssh_verify(keys))
    assert src.checkout(applied_revision=first).revision == second
    git(git_repo, "reset", "-q", "--hard", first)  # a validly signed, replayed old commit
    with pytest.raises(TrustError, match="refusing a rewind"):
        src.checkout(applied_revision=second)


# -- GPG ----------------------------------------------------------------------------


@dataclass
class GpgSigner:
    home: Path
    uid: str
    public: Path  # armored export of the public key

    def commit(self, repo: Path, files: dict[str, str]) -> str:
        for rel, content in files.items():
            (repo / rel).write_text(content)
        run_git(repo, "add", "-A")
        run_git(repo, "-c", "gpg.format=openpgp", "-c", f"user.signingkey={self.uid}",
                "commit", "-q", "-S", "-m", "gpg", env={"GNUPGHOME": str(self.home)})  # fmt: skip
        return run_git(repo, "rev-parse", "HEAD")


@pytest.fixture
def gpg_signers() -> Iterator[dict[str, GpgSigner]]:
    """Throwaway keys (no passphrase) in short-path homes; their agents are stopped after."""
    if shutil.which("gpg") is None:
        pytest.fail("gpg is not installed: scripts/bootstrap installs gnupg")
    signers: dict[str, GpgSigner] = {}
    try:
        for name in ("alice", "mallory"):
            home = Path(tempfile.mkdtemp(prefix="ge-gpg-"))
            uid = f"{name}@example.com"
            gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet"]
            subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", f"{name} <{uid}>",
                            "ed25519", "sign", "never"], check=True, capture_output=True, timeout=60)  # fmt: skip
            public = home / "public.asc"
            public.write_bytes(subprocess.run([*gpg, "--armor", "--export", uid], check=True,
                                              capture_output=True, timeout=30).stdout)  # fmt: skip
            signers[name] = GpgSigner(home=home, uid=uid, public=public)
        yield signers
    finally:
        for signer in signers.values():
            subprocess.run(["gpgconf", "--homedir", str(signer.home), "--kill", "gpg-agent"],
                           capture_output=True, timeout=30)  # fmt: skip
            shutil.rmtree(signer.home, ignore_errors=True)


def test_gpg_a_commit_signed_by_a_key_in_the_keyring_passes(
    git_repo: Path, cache: Path, gpg_signers: dict[str, GpgSigner]
) -> None:
    alice = gpg_signers["alice"]
    sha = alice.commit(git_repo, {"a.txt": "x"})
    policy = CommitVerification(mode="gpg", gpg_keyring=alice.public)
    assert source(git_repo, cache, verify=policy).checkout().revision == sha
    # A GnuPG home directory works as the keyring too (it is copied, never written).
    policy = CommitVerification(mode="gpg", gpg_keyring=alice.home)
    assert source(git_repo, cache, verify=policy).checkout().revision == sha


def test_gpg_a_commit_signed_by_another_key_is_refused(
    git_repo: Path, cache: Path, gpg_signers: dict[str, GpgSigner]
) -> None:
    sha = gpg_signers["mallory"].commit(git_repo, {"a.txt": "evil"})
    policy = CommitVerification(mode="gpg", gpg_keyring=gpg_signers["alice"].public)
    with pytest.raises(TrustError, match=f"commit {sha[:12]} is signed by a key not in gpg_keyring"):
        source(git_repo, cache, verify=policy).checkout()
    assert not (cache / "repo/a.txt").exists()


def test_descent_over_git_daemon(tmp_path: Path, git_repo: Path, cache: Path) -> None:
    """A real server (git://): a fast-forward stays shallow, a force-push back is refused."""
    shas = history(git_repo, 4)
    srv = tmp_path / "srv"
    srv.mkdir()
    git(srv, "clone", "-q", "--bare", str(git_repo), "fleet.git")
    git(git_repo, "remote", "add", "origin", str(srv / "fleet.git"))
    with git_daemon(srv) as base:
        src = GitRepoSource(SourceConfig(url=f"{base}/fleet.git", ref="main"), cache)
        src.checkout()
        new = history(git_repo, 3, "n")[-1]
        git(git_repo, "push", "-q", "origin", "main")
        assert src.checkout(applied_revision=shas[-1]).revision == new
        assert commits_in_cache(cache) == 4
        git(git_repo, "push", "-q", "--force", "origin", f"{shas[1]}:refs/heads/main")
        with pytest.raises(TrustError, match="refusing a rewind"):
            src.checkout(applied_revision=new)
