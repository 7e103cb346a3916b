"""The Git source adapter: a self-healing, shallow cache clone of one ref.

Implements ``gitops_edge.ports.source.GitSource`` by running ``git`` (subprocess).
A poll where nothing moved costs one ``ls-remote`` (asking the server for
branches, or tags, only) and one ``git status`` that checks HEAD and the work
tree together; a moved ref costs one depth-1 fetch. The local clone is a
cache, never a source of truth: when anything about it looks wrong it is
deleted and fetched again.
Every git failure leaves this module as a ``SourceError``.

Before a commit reaches the work tree it is vetted (README.md, "Trust"): its
signature when ``source.verify`` is set, and, unless ``source.allow_rewind``,
that it descends from the revision last applied. Refusals are ``TrustError``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_edge.adapters.git.hardening import guard_git_dir
from gitops_edge.adapters.git.transport import (
    Transport,
    is_http,
    local_env,
    normalise_url,
    retry_after_from_trace,
    throttle_status,
    trace_env,
    transport_for,
)
from gitops_edge.errors import RefNotFoundError, SourceError, SourceThrottledError, TrustError
from gitops_edge.model.config import SourceConfig
from gitops_edge.ports.source import Checkout

if TYPE_CHECKING:
    from gitops_edge.adapters.git.verify import CommitVerifier

log = logging.getLogger(__name__)

_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_ABBREV_SHA = re.compile(r"[0-9a-f]{7,63}")
_FETCHED = "refs/gitops-edge/fetched"  # keeps a fetched commit alive until checkout
_LOCAL_TIMEOUT_S = 300.0  # local commands: only a hung disk should ever hit this


@dataclass(frozen=True)
class _Result:
    rc: int
    out: str
    err: str
    timed_out: bool
    retry_after_s: float | None = None  # the server's Retry-After, when it answered 429/503

    @property
    def final(self) -> bool:
        """Timed out or throttled: trying again another way now would only add load."""
        return self.timed_out or throttle_status(self.err) is not None


class _CorruptClone(Exception):
    """The local clone cannot be trusted; delete it and start over."""


class GitRepoSource:
    """A ``GitSource`` over https, ssh, git://, file:// or a local path.

    ``cache_dir`` is owned by this object: the clone lives in ``cache_dir/repo``
    and the last checked-out revision in ``cache_dir/revision``. One sync at a
    time; no locking is done.
    """

    def __init__(self, config: SourceConfig, cache_dir: Path) -> None:
        self._config = config
        self._url = normalise_url(config.url)
        self._cache_dir = cache_dir
        self._repo_dir = cache_dir / "repo"
        self._git_dir = self._repo_dir / ".git"
        self._revision_file = cache_dir / "revision"
        self._ref_hint_file = cache_dir / "remote-ref"  # the full ref name a short ref matched last
        self._remote_ref: str | None = None  # the full ref name ls-remote matched last
        self._verifier: CommitVerifier | None = None
        if config.verify:
            from gitops_edge.adapters.git.verify import CommitVerifier

            self._verifier = CommitVerifier(config.verify, config.timeout_s)

    # -- the port -------------------------------------------------------------

    def remote_revision(self) -> str:
        """Where the ref points now, per the remote.

        A full sha is its own answer (no network). An abbreviated sha cannot be
        answered by ``ls-remote``, so it is resolved in the cache clone, fetching
        the remote's history when the cache does not know it yet.
        """
        transport = transport_for(self._config, self._url)
        target = self._target(transport)
        if target is not None:
            return target
        return self._healing(lambda: self._resolve_abbreviated(transport))

    def checkout(self, applied_revision: str | None = None, revision: str | None = None) -> Checkout:
        """Make the cache clone's work tree exactly the ref's commit, clean.

        ``applied_revision`` is the commit last applied on the device (None:
        nothing yet); unless ``allow_rewind``, the new commit must descend from it.
        ``revision``: the ref's commit as ``remote_revision`` just answered (no second ls-remote).
        """
        transport = transport_for(self._config, self._url)
        target = revision if revision is not None and _FULL_SHA.fullmatch(revision) else self._target(transport)
        previous = self._read_previous()
        revision = self._healing(lambda: self._sync_tree(transport, target, applied_revision))
        self._write_previous(revision)
        return Checkout(revision=revision, root=self._repo_dir, changed=revision != previous)

    # -- resolving the ref ------------------------------------------------------

    def _target(self, transport: Transport) -> str | None:
        """The commit the ref names, or None for an abbreviated sha (resolve locally)."""
        ref = self._config.ref
        if _FULL_SHA.fullmatch(ref):
            return ref
        found = self._ls_remote(transport)
        if found is not None:
            return found
        if _ABBREV_SHA.fullmatch(ref):
            return None
        raise RefNotFoundError(f"ref {ref!r} not found in {transport.redact(self._url)}")

    def _ref_queries(self) -> list[tuple[list[str], list[str]]]:
        """``ls-remote`` (options, patterns) to try in turn until one names the ref.

        Patterns, in git's order of precedence (branch over tag), never narrow
        what the server lists; ``--heads``/``--tags`` do (protocol v2 sends them
        as ``ref-prefix``). A short name is looked for among branches first, then
        tags; once it is known to be a tag (``cache_dir/remote-ref``), both are
        listed in one request so that a new branch of that name still wins.
        """
        ref = self._config.ref
        if ref == "HEAD":
            return [([], ["HEAD"])]
        if ref.startswith("refs/heads/"):
            return [(["--heads"], [ref])]
        if ref.startswith("refs/tags/"):
            return [(["--tags"], [f"{ref}^{{}}", ref])]
        if ref.startswith("refs/"):
            return [([], [f"{ref}^{{}}", ref])]
        branch, tags = [f"refs/heads/{ref}"], [f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"]
        if self._read_ref_hint() == f"refs/tags/{ref}":
            return [(["--heads", "--tags"], branch + tags)]
        return [(["--heads"], branch), (["--tags"], tags)]

    def _ls_remote(self, transport: Transport) -> str | None:
        self._mkdir(self._cache_dir)
        for options, patterns in self._ref_queries():
            result = self._run(
                ["ls-remote", *options, "--", self._url, *patterns],
                transport,
                cwd=self._cache_dir,
                timeout=self._config.timeout_s,
                in_repo=False,
            )
            if result.rc != 0:
                raise self._network_error("ls-remote", result, transport)
            refs: dict[str, str] = {}
            for line in result.out.splitlines():
                sha, _, ref_name = line.partition("\t")
                refs[ref_name.strip()] = sha.strip()
            # A peeled entry ("^{}") exists only for annotated tags and wins over the tag object.
            name = next((p for p in patterns if p in refs), None)
            if name is not None:
                self._remote_ref = name.removesuffix("^{}")
                if self._config.ref != "HEAD" and not self._config.ref.startswith("refs/"):
                    self._write_ref_hint(self._remote_ref)  # a short name: remember its kind
                return refs[name]
        return None

    def _resolve_abbreviated(self, transport: Transport) -> str:
        self._open_or_init()
        sha = self._local_commit(self._config.ref)
        if sha is None:
            self._fetch_everything(transport)
            sha = self._local_commit(self._config.ref)
        if sha is None:
            raise RefNotFoundError(
                f"ref {self._config.ref!r} names no branch, tag or commit "
                f"in {transport.redact(self._url)}"
            )
        return sha

    # -- the cache clone --------------------------------------------------------

    def _healing(self, work: Callable[[], str]) -> str:
        """Run ``work``; if the clone proves corrupt, delete it and run once more."""
        try:
            return work()
        except _CorruptClone as exc:
            log.warning("git cache clone %s is damaged (%s); re-cloning", self._repo_dir, exc)
            self._wipe()
        try:
            return work()
        except _CorruptClone as exc:
            raise SourceError(f"git cache clone {self._repo_dir} unusable: {exc}") from None

    def _sync_tree(self, transport: Transport, target: str | None, applied: str | None) -> str:
        head_file = self._head_file()
        if target is None or head_file is None or head_file == target:
            head, clean = self._inspect()
            if target is not None and head == target and clean:
                self._vet(transport, target, applied)
                return target
        # else the ref moved off a detached HEAD: the switch below cleans the tree whatever its state,
        # and a damaged clone fails one of its commands (then it heals), so no `git status` first
        if target is None:
            target = self._resolve_abbreviated(transport)
        if self._local_commit(target) != target:
            # With a rewind check ahead, fetch the history down to what we have
            # (only the new commits on a fast-forward) instead of depth 1.
            target = self._fetch(transport, target, shallow=not self._guards_rewind(applied, target))
        self._vet(transport, target, applied)
        self._switch_to(target)
        return target

    # -- vetting a commit before checkout ---------------------------------------

    def _guards_rewind(self, applied: str | None, target: str) -> bool:
        return applied is not None and applied != target and not self._config.allow_rewind

    def _vet(self, transport: Transport, target: str, applied: str | None) -> None:
        """Refuse ``target`` (``TrustError``) unless its signature and ancestry are acceptable."""
        if self._verifier is not None:
            signer = self._verifier.verify(self._git_dir, target)
            log.debug("commit %s is signed by %s", target, signer)
        if applied is not None and self._guards_rewind(applied, target):
            self._require_descent(transport, applied, target)

    def _require_descent(self, transport: Transport, applied: str, target: str) -> None:
        """``target`` must have ``applied`` in its history.

        A shallow history cannot prove a negative: while the walk from
        ``target`` ends at a shallow boundary, fetch its whole history once.
        """
        if self._is_ancestor(applied, target):
            return
        if self._history_truncated(target):
            self._unshallow(transport, target)
            if self._is_ancestor(applied, target):
                return
            if self._history_truncated(target):
                raise TrustError(
                    f"ref {self._config.ref}: cannot fetch enough history to check that "
                    f"{target[:12]} descends from the applied {applied[:12]}; refusing it"
                )
        raise TrustError(
            f"ref {self._config.ref} moved from {applied[:12]} to {target[:12]}, which does not "
            f"descend from it: refusing a rewind (set source.allow_rewind to accept)"
        )

    def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True if ``ancestor`` is in ``descendant``'s history as the clone knows it."""
        result = self._run_local(["merge-base", "--is-ancestor", ancestor, descendant])
        return result.rc == 0  # 1: not an ancestor; 128: ``ancestor`` is unknown here

    def _history_truncated(self, commit: str) -> bool:
        """Does the walk back from ``commit`` end at a shallow boundary (parents missing)?"""
        try:
            shallow = set((self._git_dir / "shallow").read_text(encoding="ascii").split())
        except FileNotFoundError:
            return False
        except (OSError, UnicodeDecodeError) as exc:
            raise _CorruptClone(f"cannot read .git/shallow: {exc}") from None
        return not shallow.isdisjoint(self._local(["rev-list", commit]).split())

    def _unshallow(self, transport: Transport, target: str) -> None:
        refspecs = [f"+{target}:{_FETCHED}"]
        if self._remote_ref is not None:
            refspecs.append(f"+{self._remote_ref}:{_FETCHED}-ref")
        result: _Result | None = None
        for refspec in refspecs:
            result = self._run_fetch(transport, ["--unshallow"], [refspec])
            if result.rc == 0 or result.final:
                break
        assert result is not None
        if result.rc != 0:
            raise self._network_error("fetch", result, transport)

    def _open_or_init(self) -> str | None:
        """Validate the clone (or create it); returns the commit HEAD is detached at.

        HEAD is symbolic only in a fresh clone (we always detach), so anything
        else that is not a readable commit with its tree present means damage.
        """
        if not self._git_dir.is_dir():
            self._wipe()
            self._mkdir(self._repo_dir)
            # No sample hooks; then the known config (no reflog: old revisions become
            # unreachable and gc can drop them) is written by the guard before each command.
            self._local(["init", "-q", "--template="])
            guard_git_dir(self._git_dir)
            return None
        symbolic = self._run_local(["symbolic-ref", "-q", "HEAD"])
        if symbolic.rc == 0:
            return None
        if symbolic.rc != 1:
            raise _CorruptClone(_first_error(symbolic.err))
        head = self._local(["rev-parse", "--verify", "HEAD^{commit}"]).strip()
        self._local(["cat-file", "-e", "HEAD^{tree}"])
        return head

    def _local_commit(self, name: str) -> str | None:
        """The full sha of commit ``name`` if the clone has it (and its tree)."""
        return self._local_commits([name])[name]

    def _local_commits(self, names: list[str]) -> dict[str, str | None]:
        """Per name, the full sha of that commit if the clone has it and its tree: one
        ``cat-file --batch-check`` process for them all (names are shas or our own refs)."""
        lines = [line for n in names for line in (f"{n}^{{commit}}", f"{n}^{{tree}}")]
        result = self._run_local(["cat-file", "--batch-check=%(objectname) %(objecttype)"],
                                 stdin="".join(f"{line}\n" for line in lines))
        answers = result.out.splitlines() if result.rc == 0 else []
        if len(answers) != len(lines):
            return dict.fromkeys(names)
        found: dict[str, str | None] = {}
        for i, n in enumerate(names):
            commit, tree = answers[2 * i].split(), answers[2 * i + 1].split()
            ok = commit[-1:] == ["commit"] and tree[-1:] == ["tree"] and _FULL_SHA.fullmatch(commit[0])
            found[n] = commit[0] if ok else None
        return found

    def _head_file(self) -> str | None:
        """The commit ``.git/HEAD`` names when it is detached (a bare sha), read without git."""
        try:
            text = (self._git_dir / "HEAD").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if _FULL_SHA.fullmatch(text) else None

    def _inspect(self) -> tuple[str | None, bool]:
        """(the commit HEAD is detached at or None, work tree clean?), in one git process.

        ``git status`` compares the index with HEAD's tree, so a HEAD whose commit
        or tree is missing or unreadable fails it, as does a damaged index: the
        clone is then corrupt. Porcelain v2 ``--branch`` also names HEAD's commit
        and says whether it is detached. A missing clone is created (not clean).
        """
        if not self._git_dir.is_dir():
            return self._open_or_init(), False
        status = self._local(["status", "--porcelain=v2", "--branch", "--ignored", "--untracked-files=all"])
        oid, detached, clean = "", False, True
        for line in status.splitlines():
            if line.startswith("# branch.oid "):
                oid = line.removeprefix("# branch.oid ").strip()
            elif line == "# branch.head (detached)":
                detached = True
            elif not line.startswith("# "):
                clean = False  # an edited, staged, untracked or ignored entry
        return (oid if detached and _FULL_SHA.fullmatch(oid) else None), clean

    def _switch_to(self, sha: str) -> None:
        """Detach at ``sha``; nothing untracked, ignored or edited survives.

        ``clean`` first leaves only tracked files; ``checkout -f`` then makes the index and
        every tracked file exactly ``sha``'s (edits discarded, files gone from it deleted),
        so nothing untracked can be left after it.
        """
        self._local(["clean", "-ffdxq"])
        self._local(["-c", "advice.detachedHead=false", "checkout", "-q", "-f", "--detach", sha])
        self._drop_fetch_refs()

    def _drop_fetch_refs(self) -> None:
        """Delete ``refs/gitops-edge/*`` (they only kept fetched commits alive) in one process."""
        loose = self._git_dir / "refs" / "gitops-edge"
        try:
            names = {p.name for p in loose.iterdir()} if loose.is_dir() else set()
            packed = (self._git_dir / "packed-refs").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            packed = ""
        except OSError as exc:
            raise _CorruptClone(f"cannot read the clone's refs: {exc.strerror}") from None
        if names <= {"fetched", "fetched-ref"} and "refs/gitops-edge/" not in packed:
            refs = [f"refs/gitops-edge/{n}" for n in sorted(names)]  # the usual: the one fetch's
        else:
            refs = self._local(["for-each-ref", "--format=%(refname)", "refs/gitops-edge/"]).split()
        if refs:
            self._local(["update-ref", "--stdin"], stdin="".join(f"delete {r}\n" for r in refs))

    def _mkdir(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(f"cannot create {path}: {exc.strerror}") from None

    def _wipe(self) -> None:
        if self._repo_dir.exists() or self._repo_dir.is_symlink():
            try:
                shutil.rmtree(self._repo_dir)
            except OSError as exc:
                raise SourceError(f"cannot remove git cache clone {self._repo_dir}: {exc.strerror}") from None

    # -- fetching ---------------------------------------------------------------

    def _fetch(self, transport: Transport, target: str, *, shallow: bool = True) -> str:
        """Bring ``target`` into the clone, as cheaply as the server allows.

        Depth 1 (or, unless ``shallow``, down to commits the clone has) by sha
        first (exact); then by ref name, for servers that
        refuse unadvertised shas (if the ref moved meanwhile, its new commit is
        taken); then the whole history. Returns the commit to check out.
        """
        errors: list[_Result] = []
        refspecs = [f"+{target}:{_FETCHED}"]
        if self._remote_ref is not None and not _FULL_SHA.fullmatch(self._config.ref):
            refspecs.append(f"+{self._remote_ref}:{_FETCHED}")
        for refspec in refspecs:
            result = self._run_fetch(transport, ["--depth", "1"] if shallow else [], [refspec])
            if result.rc == 0:
                have = self._local_commits([_FETCHED, target])
                fetched = have[_FETCHED]
                if fetched is not None:
                    return target if have[target] == target else fetched
            else:
                errors.append(result)
            if result.final:
                raise self._network_error("fetch", result, transport)
        try:
            self._fetch_everything(transport)
        except SourceError:
            if errors:
                raise self._network_error("fetch", errors[0], transport) from None
            raise
        if self._local_commit(target) == target:
            return target
        raise RefNotFoundError(f"commit {target} not found in {transport.redact(self._url)}")

    def _fetch_everything(self, transport: Transport) -> None:
        options = ["--unshallow"] if (self._git_dir / "shallow").exists() else []
        refspecs = ["+refs/heads/*:refs/gitops-edge/heads/*", "+refs/tags/*:refs/gitops-edge/tags/*"]
        result = self._run_fetch(transport, options, refspecs)
        if result.rc != 0:
            raise self._network_error("fetch", result, transport)

    def _run_fetch(self, transport: Transport, options: list[str], refspecs: list[str]) -> _Result:
        result = self._run(
            ["fetch", "-q", "--no-tags", "--no-recurse-submodules", *options,
             "--", self._url, *refspecs],
            transport,
            cwd=self._repo_dir,
            timeout=self._config.timeout_s,
            in_repo=True,
        )  # fmt: skip
        if result.rc != 0 and not result.final and self._clone_is_damaged():
            raise _CorruptClone(_first_error(result.err))
        return result

    def _clone_is_damaged(self) -> bool:
        """After a failed fetch: was it the clone (heal) rather than the remote (report)?"""
        fsck = self._run_local(["fsck", "--connectivity-only", "--no-dangling", "--no-progress"])
        return fsck.rc != 0

    def _network_error(self, op: str, result: _Result, transport: Transport) -> SourceError:
        url = transport.redact(self._url)
        if result.timed_out:
            return SourceError(f"git {op} {url}: timed out after {self._config.timeout_s:g}s")
        status = throttle_status(result.err)
        if status is not None:
            wait = f" (Retry-After {result.retry_after_s:g}s)" if result.retry_after_s is not None else ""
            return SourceThrottledError(
                f"git {op} {url}: server busy, HTTP {status}{wait}", status=status, retry_after_s=result.retry_after_s
            )
        return SourceError(f"git {op} {url}: {transport.redact(_first_error(result.err))}")

    # -- running git ------------------------------------------------------------

    def _local(self, args: list[str], stdin: str | None = None) -> str:
        """A local git command that must succeed; failure means a damaged clone."""
        result = self._run_local(args, stdin=stdin)
        if result.rc != 0:
            raise _CorruptClone(f"git {args[0]}: {_first_error(result.err)}")
        return result.out

    def _run_local(self, args: list[str], stdin: str | None = None) -> _Result:
        return self._run(args, None, cwd=self._repo_dir, timeout=_LOCAL_TIMEOUT_S, in_repo=True, stdin=stdin)

    def _run(
        self,
        args: list[str],
        transport: Transport | None,
        *,
        cwd: Path,
        timeout: float,
        in_repo: bool,
        stdin: str | None = None,
    ) -> _Result:
        env = dict(transport.env) if transport is not None else local_env(self._config, self._url)
        # Never pick up a repository above the cache (e.g. the agent's own checkout).
        env["GIT_CEILING_DIRECTORIES"] = str(self._cache_dir.resolve().parent)
        env["GIT_OPTIONAL_LOCKS"] = "0"  # `git status` writes no refreshed index back (flash wear)
        if in_repo:
            self._guard()
            env["GIT_DIR"] = str(self._git_dir)
            env["GIT_WORK_TREE"] = str(self._repo_dir)
        trace = self._trace_file() if transport is not None and is_http(self._url) else None
        if trace is not None:
            env.update(trace_env(str(trace)))
        started = time.monotonic()
        try:
            rc, out, err = _git(args, cwd, env, timeout, stdin)
        except OSError as exc:
            raise SourceError(f"cannot run git: {type(exc).__name__}") from None
        finally:
            retry_after = self._retry_after(trace) if trace is not None else None
        timed_out = time.monotonic() - started >= timeout and rc != 0
        return _Result(rc=rc, out=str(out), err=str(err), timed_out=timed_out,
                       retry_after_s=retry_after if rc != 0 else None)  # fmt: skip

    def _guard(self) -> None:
        """The clone's ``.git`` must be a plain directory with the known config (``hardening``)."""
        if self._git_dir.is_symlink() or (self._git_dir.exists() and not self._git_dir.is_dir()):
            raise _CorruptClone(".git is not a directory")
        if not self._git_dir.is_dir():
            return  # `git init` is about to make it
        try:
            if guard_git_dir(self._git_dir):
                log.warning("git cache clone %s: its config or layout was changed; restored", self._repo_dir)
        except OSError as exc:
            raise SourceError(f"cannot restore {self._git_dir}/config: {exc.strerror}") from None

    def _trace_file(self) -> Path | None:
        """A private (0600) file for curl's header trace; None if it cannot be made (then no Retry-After)."""
        try:
            fd, name = tempfile.mkstemp(prefix=".curl-trace-", dir=self._cache_dir)
        except OSError:
            return None
        os.close(fd)
        return Path(name)

    @staticmethod
    def _retry_after(trace: Path) -> float | None:
        """Read the header trace for a Retry-After, then delete it (it is never kept)."""
        try:
            return retry_after_from_trace(trace.read_text(encoding="utf-8", errors="replace"), time.time())
        except OSError:
            return None
        finally:
            trace.unlink(missing_ok=True)

    # -- remembering the previous checkout --------------------------------------

    def _read_previous(self) -> str | None:
        try:
            text = self._revision_file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if _FULL_SHA.fullmatch(text) else None

    def _write_previous(self, revision: str) -> None:
        _write_atomic(self._revision_file, revision)

    def _read_ref_hint(self) -> str | None:
        try:
            return self._ref_hint_file.read_text(encoding="ascii").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def _write_ref_hint(self, name: str) -> None:
        """Best effort: without it the next poll only asks for branches first."""
        try:
            _write_atomic(self._ref_hint_file, name)
        except SourceError as exc:
            log.debug("%s", exc)


def _git(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float, stdin: str | None = None
) -> tuple[int, str, str]:
    """Run git (plain subprocess: importing GitPython cost ~0.1 s per process start and RSS);
    (exit code, stdout, stderr). Past ``timeout`` its whole process group is killed
    (ssh, remote helpers), so a stuck server cannot hold the pipes open."""
    proc = subprocess.Popen(
        ["git", *args], cwd=cwd, env={**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **env},
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        out, err = proc.communicate(None if stdin is None else stdin.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = proc.communicate()
        err += f"\ngit {args[0]} killed after {timeout:g}s".encode()
    return proc.returncode, out.decode("utf-8", "replace").removesuffix("\n"), err.decode("utf-8", "replace")


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` + newline; no write at all when it already says that."""
    data = text + "\n"
    try:
        if path.read_text(encoding="ascii") == data:
            return  # polls where nothing moved do not wear the device's flash
    except (OSError, UnicodeDecodeError):
        pass
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(data, encoding="ascii")
        os.replace(tmp, path)
    except OSError as exc:
        raise SourceError(f"cannot write {path}: {exc.strerror}") from None


_BOILERPLATE = ("Please make sure you have the correct access rights", "and the repository exists.")


def _first_error(stderr: str) -> str:
    """git's stderr as one bounded line: the last two lines that say something.

    git often splits a cause over two lines ("unable to connect to HOST:" then
    the errno; ssh's reason then "Could not read from remote repository").
    """
    lines = [
        line.strip().removeprefix("fatal: ").removeprefix("error: ")
        for line in stderr.splitlines()
        if line.strip() and not line.strip().startswith(_BOILERPLATE)
    ]
    text = ""
    for line in lines[-2:]:
        text += ("" if not text else " " if text.endswith(":") else "; ") + line
    return (text or "git failed without a message")[:300]
