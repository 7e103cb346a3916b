"""Git traffic of a poll: bytes the server sends when nothing moved vs when it did.

A bare fleet repository (a 20-service compose file, 20 commits of history; once
with only ``main``, once with 50 tags as well) is served by the real
``git http-backend`` (``tests.support.git_servers``) behind a counting TCP
proxy on 127.0.0.1, so every byte on the wire counts, HTTP headers included.
The agent's own Git source (``GitRepoSource``, as a sync uses it, with the
last applied revision) polls through the proxy. Per repetition:

(a) a no-change poll (one ``ls-remote --heads``: protocol v2 sends
    ``ref-prefix refs/heads/``, so the server lists branches, not tags);
(b) the peer: a poll after one new commit that changes the compose file
    (``ls-remote`` and a fetch of what is missing).

Target (issue 5): (a) under 2 KiB from the server.

Usage: ``.venv/bin/python -m bench.git_poll [--reps N]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bench import summary
from bench.rollback import ROOT, check, git_commit, git_init, run
from bench.stack20 import stack_yaml

TARGET_BYTES = 2048


class CountingProxy:
    """TCP proxy to ``upstream``; counts bytes each way and connections."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.down = 0  # server -> client
        self.up = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.down = self.up = self.connections = 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                with self._lock:
                    if downstream:
                        self.down += len(data)
                    else:
                        self.up += len(data)
        except OSError:
            pass
        finally:
            try:  # pass the half-close on; the other direction may still be sending
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self._sock.close()


@contextmanager
def served(project_root: Path) -> Iterator[tuple[str, CountingProxy]]:
    sys.path.insert(0, str(ROOT))
    from tests.support.git_servers import git_http_server

    with git_http_server(project_root) as server:
        proxy = CountingProxy(("127.0.0.1", server.port))
        try:
            yield f"http://127.0.0.1:{proxy.port}/fleet.git", proxy
        finally:
            proxy.close()


def push(work: Path) -> None:
    check(run(["git", "push", "-q", "origin", "main", "--tags"], work), "git push")


def kib(n: float) -> str:
    return f"{n / 1024:.2f} KiB"


def scenario(root: Path, reps: int, tags: int) -> tuple[list[int], list[int], dict[str, list[int]], int]:
    """(no-change bytes, with-fetch bytes, connections per kind, clone bytes) for a repo with ``tags`` tags."""
    from gitops_edge.adapters.git.source import GitRepoSource
    from gitops_edge.model.config import SourceConfig

    noop: list[int] = []
    fetch: list[int] = []
    conns: dict[str, list[int]] = {"noop": [], "fetch": []}
    check(run(["git", "init", "-q", "--bare", "-b", "main", str(root / "srv" / "fleet.git")], root), "init")
    work = root / "work"
    git_init(work)
    check(run(["git", "remote", "add", "origin", str(root / "srv" / "fleet.git")], work), "remote")
    for i in range(20):
        git_commit(work, {"devices/d1/app/compose.yaml": stack_yaml("v1" if i % 2 else "v2")}, f"history {i}")
    for i in range(tags):
        check(run(["git", "tag", f"release-{i}", f"HEAD~{i % 20}"], work), "tag")
    push(work)
    with served(root / "srv") as (url, proxy):
        source = GitRepoSource(SourceConfig(url=url, ref="main", path="devices/d1"), root / "cache")
        proxy.reset()
        applied = source.checkout(None).revision
        first = proxy.down
        for i in range(reps):
            proxy.reset()
            if source.checkout(applied).revision != applied:
                raise RuntimeError("a no-change poll moved the revision")
            noop.append(proxy.down)
            conns["noop"].append(proxy.connections)
            git_commit(work, {"devices/d1/app/compose.yaml": stack_yaml(f"rep{i}")}, f"rep {i}")
            push(work)
            proxy.reset()
            checkout = source.checkout(applied)
            if not checkout.changed:
                raise RuntimeError("the poll after a new commit did not fetch it")
            applied = checkout.revision
            fetch.append(proxy.down)
            conns["fetch"].append(proxy.connections)
            print(f"{tags} tags, rep {i + 1}/{reps}: no-change {noop[-1]} B, with fetch {fetch[-1]} B",
                  file=sys.stderr, flush=True)
    return noop, fetch, conns, first


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.git_poll", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    args = p.parse_args(argv)
    print(f"| Git poll over smart HTTP, bytes from the server (n={args.reps}) | median | min | max | connections |")
    print("|---|---|---|---|---|")
    verdicts = []
    for tags in (0, 50):
        with tempfile.TemporaryDirectory(prefix="gebench-") as tmp:
            noop, fetch, conns, first = scenario(Path(tmp), args.reps, tags)
        mn, mf = statistics.median(noop), statistics.median(fetch)
        what = "main only" if not tags else f"main + {tags} tags"
        print(f"| {what}: (a) no-change poll | {kib(mn)} | {kib(min(noop))} | {kib(max(noop))} | "
              f"{statistics.median(conns['noop']):.0f} |")
        print(f"| {what}: (b) poll after one new commit (peer) | {kib(mf)} | {kib(min(fetch))} | "
              f"{kib(max(fetch))} | {statistics.median(conns['fetch']):.0f} |")
        print(f"| {what}: (a)/(b) | {mn / mf:.2f} | | | |")
        print(f"| {what}: first poll (clone), reference | {kib(first)} | | | |")
        summary.add(f"Git no-change poll, bytes from the server ({what})", kib(mn), "poll with a fetch", kib(mf),
                    mn / mf, f"< {kib(TARGET_BYTES)}", mn < TARGET_BYTES)
        verdicts.append(f"{what}: {'met' if mn < TARGET_BYTES else '**missed**'}")
    print()
    print(f"Target: (a) < {kib(TARGET_BYTES)}. " + "; ".join(verdicts) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
