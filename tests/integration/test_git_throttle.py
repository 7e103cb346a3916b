"""A Git server that says "slow down" (HTTP 429/503) over real smart HTTP.

The adapter must report it as ``SourceThrottledError`` carrying the server's
Retry-After, without extra requests to the busy server; the daemon must not
poll again sooner than asked.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from gitops_edge.adapters.git.source import GitRepoSource
from gitops_edge.daemon.loop import next_delay
from gitops_edge.errors import SourceThrottledError
from gitops_edge.model.config import SourceConfig
from tests.conftest import commit_files, git
from tests.support.git_servers import git_http_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bare(tmp_path: Path, git_repo: Path) -> Path:
    commit_files(git_repo, {"devices/d1/.keep": ""}, "first")
    srv = tmp_path / "srv"
    srv.mkdir()
    git(srv, "clone", "-q", "--bare", str(git_repo), "fleet.git")
    git(git_repo, "remote", "add", "origin", str(srv / "fleet.git"))
    return srv / "fleet.git"


def leftovers(cache: Path) -> list[Path]:
    return list(cache.rglob(".curl-trace-*"))


def test_429_with_retry_after_is_carried_and_costs_one_request(bare: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with git_http_server(bare.parent) as server:
        server.throttle, server.retry_after = 429, "7"
        src = GitRepoSource(SourceConfig(url=server.url("fleet.git")), cache)
        with pytest.raises(SourceThrottledError) as caught:
            src.remote_revision()
        err = caught.value
        assert (err.status, err.retry_after_s, err.retryable) == (429, 7.0, True)
        assert "HTTP 429" in str(err) and "Retry-After 7s" in str(err)
        assert server.throttled == 1  # no retries of our own against a busy server
        assert next_delay(1, 0, 1, random.Random(0), err.retry_after_s) == 7
        assert not leftovers(cache)  # the header trace is never kept

        server.throttle = None
        assert src.remote_revision() == git(bare, "rev-parse", "main")


def test_503_without_retry_after_means_plain_backoff(bare: Path, tmp_path: Path) -> None:
    with git_http_server(bare.parent) as server:
        server.throttle = 503
        src = GitRepoSource(SourceConfig(url=server.url("fleet.git")), tmp_path / "cache")
        with pytest.raises(SourceThrottledError) as caught:
            src.checkout()
        assert (caught.value.status, caught.value.retry_after_s) == (503, None)
        assert next_delay(1, 0, 1, random.Random(0), caught.value.retry_after_s) == 2  # the ordinary backoff


def test_throttled_fetch_is_not_retried_other_ways(bare: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with git_http_server(bare.parent) as server:
        server.throttle, server.throttle_only = 429, "fetch"
        server.retry_after = formatdate(time.time() + 120, usegmt=True)  # the HTTP-date form
        src = GitRepoSource(SourceConfig(url=server.url("fleet.git")), cache)
        with pytest.raises(SourceThrottledError) as caught:
            src.checkout()
        assert caught.value.retry_after_s == pytest.approx(120, abs=3)
        # ls-remote then one fetch; not the by-ref and whole-history fallbacks
        assert server.commands.count("fetch") == 1
        assert not leftovers(cache)

        server.throttle = None
        assert src.checkout().revision == git(bare, "rev-parse", "main")


def test_daemon_waits_as_long_as_the_server_asked(bare: Path, tmp_path: Path) -> None:
    """A real `gitops-edge run`: 429 + Retry-After: 3 with a 1 s interval -> next poll after 3 s, not 2."""
    with git_http_server(bare.parent) as server:
        server.throttle, server.retry_after, server.throttle_only = 429, "3", "info/refs"
        config = tmp_path / "agent.yaml"
        config.write_text(
            "device: {id: throttled}\n"
            f"source: {{url: '{server.url('fleet.git')}', path: devices/d1, interval: 1s, jitter: 0s,"
            " spread_start: false}\n"
            f"state_dir: {tmp_path / 'state'}\n"
            "status: {listen: ''}\n"
        )
        log = tmp_path / "agent.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gitops_edge", "--config", str(config), "run"],
                cwd=ROOT, stdout=out, stderr=out,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while server.throttled == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.throttled == 1, log.read_text()
            first = time.monotonic()
            time.sleep(2.3)  # the plain backoff (2 s) has passed; the server's 3 s has not
            assert server.throttled == 1, log.read_text()
            server.throttle = None
            while "sync unchanged" not in log.read_text() and "sync applied" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            assert time.monotonic() - first >= 2.9
            assert "next sync in 3s (backoff after 1 failures)" in log.read_text()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
