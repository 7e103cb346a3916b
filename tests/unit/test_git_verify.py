"""Judging verifier output: only a good signature by an allowed signer passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_edge.adapters.git.verify import gpg_outcome, signature_kind, ssh_outcome

SIGNERS = Path("/etc/gitops-edge/allowed_signers")
FPR = "92EF4E912E4F856D122A7400A9CBDB2F2CA08497"


def test_signature_kind_reads_only_the_headers() -> None:
    ssh = "tree 1\nauthor a\ngpgsig -----BEGIN SSH SIGNATURE-----\n abc\n -----END SSH SIGNATURE-----\n\nmsg\n"
    assert signature_kind(ssh) == "ssh"
    assert signature_kind("tree 1\ngpgsig -----BEGIN PGP SIGNATURE-----\n x\n\nmsg") == "gpg"
    assert signature_kind("tree 1\nauthor a\n\nmessage\ngpgsig -----BEGIN SSH SIGNATURE-----\n") is None
    assert signature_kind("tree 1\ngpgsig-sha256 -----BEGIN SSH SIGNATURE-----\n x\n\nm") == "ssh"


def test_ssh_good_with_principal_passes() -> None:
    out = 'Good "git" signature for alice@example.com with ED25519 key SHA256:abc\n'
    verdict = ssh_outcome(0, out, SIGNERS)
    assert verdict.ok and verdict.detail == "alice@example.com (ED25519 key SHA256:abc)"


def test_ssh_good_without_principal_is_refused() -> None:
    out = 'Good "git" signature with ED25519 key SHA256:xyz\nNo principal matched.\n'
    verdict = ssh_outcome(1, out, SIGNERS)
    assert not verdict.ok
    assert verdict.detail == f"is signed by a key not in allowed_signers {SIGNERS}: ED25519 key SHA256:xyz"


def test_ssh_a_principal_line_with_a_failing_exit_code_is_refused() -> None:
    out = 'Good "git" signature for alice@example.com with ED25519 key SHA256:abc\n'
    assert not ssh_outcome(1, out, SIGNERS).ok


def test_ssh_a_bad_signature_is_refused() -> None:
    verdict = ssh_outcome(1, "Signature verification failed: incorrect signature\n", SIGNERS)
    assert not verdict.ok and "incorrect signature" in verdict.detail


def gpg_status(*lines: str) -> str:
    return "".join(f"[GNUPG:] {line}\n" for line in ("NEWSIG", *lines))


def test_gpg_goodsig_and_validsig_pass() -> None:
    status = gpg_status("GOODSIG A9CB Alice <a@x>", f"VALIDSIG {FPR} 2026-01-01 1 0 4 0 22 8 00 {FPR}",
                        "TRUST_UNDEFINED 0 pgp")  # fmt: skip
    verdict = gpg_outcome(0, status)
    assert verdict.ok and verdict.detail == f"Alice <a@x> ({FPR})"


@pytest.mark.parametrize(("line", "reason"), [
    ("EXPKEYSIG A9CB Alice <a@x>", "expired key"),
    ("REVKEYSIG A9CB Alice <a@x>", "revoked key"),
    ("BADSIG A9CB Alice <a@x>", "bad signature"),
    ("EXPSIG A9CB Alice <a@x>", "expired signature"),
])  # fmt: skip
def test_gpg_refusals_win_over_anything_else(line: str, reason: str) -> None:
    status = gpg_status(line, "GOODSIG A9CB Alice <a@x>", f"VALIDSIG {FPR} x")
    verdict = gpg_outcome(0, status)
    assert not verdict.ok and reason in verdict.detail


def test_gpg_an_unknown_key_is_refused() -> None:
    verdict = gpg_outcome(1, gpg_status("ERRSIG 90EEDF43 22 8 00 1 9 667B", "NO_PUBKEY 90EEDF43"))
    assert not verdict.ok and verdict.detail == "is signed by a key not in gpg_keyring (key ID 90EEDF43)"


def test_gpg_goodsig_alone_is_not_enough() -> None:
    assert not gpg_outcome(0, gpg_status("GOODSIG A9CB Alice <a@x>")).ok
