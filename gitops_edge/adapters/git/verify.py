"""Commit signature verification (``source.verify``): SSH allowed signers or a GPG keyring.

Runs ``git verify-commit --raw`` on the cache clone's object database, so a
commit is judged before any of its files reach the work tree. The signature
lives in the commit object, so a depth-1 clone is enough. Only device-local
trust material counts: system and global git config, and the user's own
GnuPG home, are ignored (the repository being verified cannot vouch for itself).
Every refusal is a ``TrustError`` naming the commit and the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gitops_edge.adapters.git.hardening import SAFE_SETTINGS, config_env, safe_env
from gitops_edge.errors import SourceError, TrustError
from gitops_edge.model.trust import CommitVerification

_SSH_GOOD = re.compile(r'^Good "git" signature for (?P<principal>.+) with (?P<key>\S+ key \S+)$', re.M)
_SSH_KEY = re.compile(r'^Good "git" signature with (?P<key>\S+ key \S+)$', re.M)
_SIG_KINDS = {
    "-----BEGIN SSH SIGNATURE-----": "ssh",
    "-----BEGIN PGP SIGNATURE-----": "gpg",
    "-----BEGIN SIGNED MESSAGE-----": "x509",
}
_KIND_NAMES = {"ssh": "an SSH", "gpg": "a GPG", "x509": "an X.509"}
# gpg status keywords that each mean "not acceptable", whatever else is said.
_GPG_REFUSALS = {
    "BADSIG": "has a bad signature (the commit was altered after signing)",
    "EXPKEYSIG": "is signed by an expired key",
    "REVKEYSIG": "is signed by a revoked key",
    "EXPSIG": "has an expired signature",
}


@dataclass(frozen=True)
class Outcome:
    """What a verifier's output says: the signer when good, else why not."""

    ok: bool
    detail: str  # signer description, or the reason (completes "commit X ...")


def signature_kind(commit_object: str) -> str | None:
    """``ssh``, ``gpg``, ``x509`` or ``unknown`` for a signed raw commit; None if unsigned."""
    headers = commit_object.split("\n\n", 1)[0]
    for line in headers.splitlines():
        name, _, value = line.partition(" ")
        if name in ("gpgsig", "gpgsig-sha256"):
            return _SIG_KINDS.get(value.strip(), "unknown")
    return None


def ssh_outcome(rc: int, output: str, signers: Path) -> Outcome:
    """Judge git's output for an SSH signature: only a Good signature with a principal counts.

    Without a matching principal git still checks the signature itself
    ("Good ... with KEY" then "No principal matched."), which must not pass.
    """
    good = _SSH_GOOD.search(output)
    if rc == 0 and good is not None:
        return Outcome(True, f"{good['principal']} ({good['key']})")
    anonymous = _SSH_KEY.search(output)
    if anonymous is not None or "No principal matched" in output:
        key = f": {anonymous['key']}" if anonymous is not None else ""
        return Outcome(False, f"is signed by a key not in allowed_signers {signers}{key}")
    return Outcome(False, f"has a bad or unverifiable SSH signature ({_first_line(output)})")


def gpg_outcome(rc: int, status: str) -> Outcome:
    """Judge gpg's ``--status-fd`` lines: GOODSIG and VALIDSIG, and nothing that refuses."""
    fields = [line.split()[1:] for line in status.splitlines() if line.startswith("[GNUPG:] ")]
    seen = {f[0]: f[1:] for f in fields if f}
    for keyword, reason in _GPG_REFUSALS.items():
        if keyword in seen:
            return Outcome(False, f"{reason} ({' '.join(seen[keyword][:1])})")
    if "NO_PUBKEY" in seen or "ERRSIG" in seen:
        key = (seen.get("NO_PUBKEY") or seen.get("ERRSIG") or ["?"])[0]
        return Outcome(False, f"is signed by a key not in gpg_keyring (key ID {key})")
    if rc == 0 and "GOODSIG" in seen and "VALIDSIG" in seen:
        uid = " ".join(seen["GOODSIG"][1:])
        return Outcome(True, f"{uid} ({seen['VALIDSIG'][0]})")
    return Outcome(False, f"has a bad or unverifiable GPG signature ({_first_line(status)})")


class CommitVerifier:
    """Checks that a commit carries a valid signature by an allowed signer."""

    def __init__(self, policy: CommitVerification, timeout_s: float = 60.0) -> None:
        self._policy = policy
        self._timeout = timeout_s

    def verify(self, git_dir: Path, sha: str) -> str:
        """Return the signer's description, or raise ``TrustError``."""
        short = sha[:12]
        kind = signature_kind(self._git(git_dir, ["cat-file", "commit", sha]).stdout)
        if kind is None:
            raise TrustError(f"commit {short} is not signed (source.verify requires signed commits)")
        if kind != self._policy.mode:
            raise TrustError(
                f"commit {short} carries {_KIND_NAMES.get(kind, 'an unknown')} signature, "
                f"but source.verify.mode is {self._policy.mode}"
            )
        outcome = self._verify_ssh(git_dir, sha) if kind == "ssh" else self._verify_gpg(git_dir, sha)
        if not outcome.ok:
            raise TrustError(f"commit {short} {outcome.detail}")
        return outcome.detail

    def _verify_ssh(self, git_dir: Path, sha: str) -> Outcome:
        signers = self._policy.allowed_signers
        if signers is None or not signers.is_file():
            raise TrustError(f"cannot verify commits: allowed_signers file {signers} does not exist")
        result = self._git(
            git_dir,
            ["-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={signers.resolve()}",
             "-c", "gpg.ssh.program=ssh-keygen", "verify-commit", "--raw", sha],
            check=False,
        )  # fmt: skip
        return ssh_outcome(result.returncode, result.stdout + result.stderr, signers)

    def _verify_gpg(self, git_dir: Path, sha: str) -> Outcome:
        keyring = self._policy.gpg_keyring
        if keyring is None or not keyring.exists():
            raise TrustError(f"cannot verify commits: gpg_keyring {keyring} does not exist")
        with tempfile.TemporaryDirectory(prefix="gitops-edge-gpg-", ignore_cleanup_errors=True) as home:
            _import_keys(Path(home), keyring, self._timeout)
            result = self._git(
                git_dir,
                ["-c", "gpg.format=openpgp", "-c", "gpg.program=gpg", "verify-commit", "--raw", sha],
                check=False,
                env={"GNUPGHOME": home},
            )
        return gpg_outcome(result.returncode, result.stdout + result.stderr)

    def _git(
        self, git_dir: Path, args: list[str], *, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, **safe_env(), **config_env(list(SAFE_SETTINGS)), LC_ALL="C")
        full_env.update(env or {})
        result = _run(["git", f"--git-dir={git_dir}", *args], self._timeout, full_env)
        if check and result.returncode != 0:
            raise SourceError(f"git {args[0]} in {git_dir}: {_first_line(result.stderr)}")
        return result


def _import_keys(home: Path, keyring: Path, timeout: float) -> None:
    """Fill the private GnuPG home ``home`` with the public keys of ``keyring``.

    ``keyring`` is an exported key file (armored or binary), a keyring/keybox
    file, or a GnuPG home directory. The copy keeps the original read-only and
    the user's own keys out; no agent is ever started.
    """
    (home / "gpg.conf").write_text("no-autostart\nno-auto-key-retrieve\n", encoding="ascii")
    gpg = ["gpg", "--homedir", str(home), "--batch", "--no-autostart", "--quiet"]
    env = dict(os.environ, LC_ALL="C")
    if keyring.is_dir():
        exported = _run_bytes(["gpg", "--homedir", str(keyring), "--batch", "--no-autostart", "--export"],
                              timeout, env)  # fmt: skip
        _run_bytes([*gpg, "--import"], timeout, env, stdin=exported)
    elif _run_bytes([*gpg, "--import", str(keyring)], timeout, env, check=False) is None:
        # Not (only) key packets: read it as a keyring/keybox file instead.
        exported = _run_bytes(["gpg", "--batch", "--no-autostart", "--no-default-keyring",
                               "--keyring", str(keyring.resolve()), "--export"], timeout, env, check=False)  # fmt: skip
        if exported:
            _run_bytes([*gpg, "--import"], timeout, env, stdin=exported, check=False)
    listed = _run([*gpg, "--with-colons", "--list-keys"], timeout, env)
    if not any(line.startswith("pub:") for line in listed.stdout.splitlines()):
        raise TrustError(f"cannot verify commits: gpg_keyring {keyring} holds no public keys")


def _run(argv: list[str], timeout: float, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise SourceError(f"{argv[0]} {argv[1]}: timed out after {timeout:g}s") from None
    except OSError as exc:
        raise SourceError(f"cannot run {argv[0]}: {exc.strerror}") from None


def _run_bytes(
    argv: list[str], timeout: float, env: dict[str, str], *, stdin: bytes | None = None, check: bool = True
) -> bytes | None:
    """Run a gpg command with binary I/O; None (or ``TrustError`` when ``check``) on failure."""
    try:
        result = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise SourceError(f"gpg: timed out after {timeout:g}s") from None
    except OSError as exc:
        raise TrustError(f"cannot verify commits: cannot run gpg: {exc.strerror}") from None
    if result.returncode != 0:
        if not check:
            return None
        message = _first_line(result.stderr.decode("utf-8", "replace"))
        raise TrustError(f"cannot verify commits: cannot read gpg_keyring: {message}")
    return result.stdout


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else "no output")[:200]
