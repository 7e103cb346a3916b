"""Revision trees: what materializing a revision's bind sources costs, against loading it.

The repository is the compose corpus (``/work/shared/corpus/compose``, or
``$GITOPS_EDGE_CORPUS``): dozens of real-world stacks with their config files,
as one Git repository (``stacks/<name>/``; stacks gitops-edge refuses, such
as ``build:``, are left out), plus one stack binding a directory of 200 files of 10 kB
(dashboards, a web root). Per repetition, interleaved:

(a) the peer: ``load_desired_state`` alone, what every sync did before;
(b) what the trees add to (a) for a new revision (every stack: its compose
    file, ``.env`` and bind sources copied, digested, sealed, flushed with one
    ``syncfs``, renamed into place);
(c) what they add to (a) when they exist (a poll at the same revision: one
    manifest read per stack, no write);
(d) the alternative not taken: copy the whole work tree minus ``.git``.

Bytes: what one revision's trees hold against the work tree without ``.git``.
Ratios are (a + b) / (a) and (a + c) / (a): the whole load step with trees
against without. Target: a poll at the same revision, (a + c) <= 1.2 x (a).

Usage: ``.venv/bin/python -m bench.revision_trees [--reps N]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import summary
from gitops_edge.adapters.files.desired_state import load_desired_state
from gitops_edge.adapters.files.revision_tree import RevisionTrees
from gitops_edge.adapters.files.stack_files import find_stack_dirs, load_stack
from gitops_edge.errors import DesiredStateError
from gitops_edge.model.spec import DesiredState

DASHBOARDS, DASHBOARD_BYTES = 200, 10_000
CORPUS = Path(os.environ.get("GITOPS_EDGE_CORPUS", "/work/shared/corpus/compose"))


def make_repo(where: Path) -> Path:
    clone = where / "clone"
    shutil.copytree(CORPUS, clone / "stacks", ignore=shutil.ignore_patterns("README.md"))
    for stack_dir in find_stack_dirs(clone, "stacks"):  # what gitops-edge cannot run (build:, ...) goes
        try:
            load_stack(clone, stack_dir)
        except DesiredStateError:
            shutil.rmtree(stack_dir)
    # and one stack that binds a directory of many files, as Grafana dashboards or a web root
    board = clone / "stacks" / "zz-dashboards"
    (board / "dashboards").mkdir(parents=True)
    (board / "compose.yaml").write_text(
        "services:\n  grafana:\n    image: grafana/grafana:11.0.0\n"
        "    volumes: ['./dashboards:/etc/grafana/dashboards:ro', './grafana.ini:/etc/grafana/grafana.ini:ro']\n")
    (board / "grafana.ini").write_text("[server]\nhttp_port = 3000\n")
    for i in range(DASHBOARDS):
        (board / "dashboards" / f"board-{i:03d}.json").write_bytes(os.urandom(DASHBOARD_BYTES // 2).hex().encode())
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.com")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "corpus"]):
        subprocess.run(["git", *args], cwd=clone, env=env, check=True, timeout=60)
    return clone


def size(top: Path, skip_git: bool = True) -> tuple[int, int]:
    """(bytes, files) under ``top``; links count as their text."""
    total = files = 0
    for dirpath, dirs, names in os.walk(top):
        if skip_git and ".git" in dirs:
            dirs.remove(".git")
        for n in names:
            total += os.lstat(os.path.join(dirpath, n)).st_size
            files += 1
    return total, files


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    if not CORPUS.is_dir():
        print(f"no corpus at {CORPUS}; set GITOPS_EDGE_CORPUS", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clone = make_repo(work)
        trees = RevisionTrees(work / "state" / "trees")
        n_stacks = len(load_desired_state(clone, "stacks", "0" * 40).stacks)
        runs: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
        for rep in range(args.reps):
            rev = f"{rep:040x}"

            def load(rev: str = rev) -> None:
                load_desired_state(clone, "stacks", rev)

            loaded = load_desired_state(clone, "stacks", rev)

            def build(loaded: DesiredState = loaded) -> None:
                trees.materialize_state(loaded, clone)

            def whole(rep: int = rep) -> None:
                shutil.copytree(clone, work / f"whole-{rep}", ignore=shutil.ignore_patterns(".git"))

            runs["a"].append(timed(load))
            runs["b"].append(timed(build))
            runs["c"].append(timed(build))  # the same revision again: reused
            runs["d"].append(timed(whole))
            print(f"rep {rep + 1}/{args.reps}", file=sys.stderr)
        tree_bytes, tree_files = size(trees.base / f"{0:040x}")
        work_bytes, work_files = size(clone)
    med = {k: statistics.median(v) for k, v in runs.items()}
    ms = {k: f"{v * 1000:.1f} ms" for k, v in med.items()}
    print(f"Corpus: {n_stacks} stacks, work tree {work_files} files / {work_bytes / 1024:.0f} KiB without .git; "
          f"one revision's trees: {tree_files} files / {tree_bytes / 1024:.0f} KiB "
          f"(incl. one manifest per stack). n={args.reps}, medians.\n")
    print("| step | median | min | max | load step with it / without |\n|---|---|---|---|---|")
    names = {"a": "(a) load (peer)", "b": "(b) + build new trees", "c": "(c) + trees exist (reuse)",
             "d": "(d) alternative: copy the whole work tree minus .git"}
    for k, label in names.items():
        ratio = med[k] / med["a"] if k in "ad" else (med["a"] + med[k]) / med["a"]
        print(f"| {label} | {ms[k]} | {min(runs[k]) * 1000:.1f} ms | {max(runs[k]) * 1000:.1f} ms | {ratio:.2f} |")
    reuse, build = (med["a"] + med["c"]) / med["a"], (med["a"] + med["b"]) / med["a"]
    summary.add("revision trees: load step at the same revision", f"+{ms['c']}", "load alone", ms["a"],
                reuse, "<= 1.2", reuse <= 1.2)
    summary.add("revision trees: load step at a new revision", f"+{ms['b']}", "load alone", ms["a"], build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
