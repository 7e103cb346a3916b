"""Updating one service of 20 to healthy: gitops-edge against Compose.

The 20-service stack of ``bench.stack20`` runs under gitops-edge and, as the
peer, as a plain Compose project. Per repetition, interleaved, ``web`` (1 s
healthcheck) moves to the other image (v1 <-> v2) in the same compose file:

(a) commit it, then time a whole ``gitops-edge sync`` process (fetch, plan,
    stage, switch, health gate, commit) until it exits;
(b) Compose, the peer: write it, then time ``docker-compose up -d --wait``;
(c) then ``web`` moves back: commit, and time the daemon's tick in this process
    (``Agent._sync_once``, as ``gitops-edge run`` does it: no process start, no
    imports), against (b') Compose doing the same move. The daemon's tick ends once
    the new ``web`` passed its gate and the commit is journaled; the replaced container
    is stopped and removed in the background (``StackSwitch.settle``, joined by the
    next tick), so (c+) also times the tick until that old container is gone.

Each must replace ``web`` only; the other 19 containers must be the same ones.
(a) against (c) separates the process start and imports from the update itself.

Usage: ``.venv/bin/python -m bench.update_one [--reps N]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import docker

from bench import summary
from bench.idle import daemon_agent
from bench.rollback import compose_bin, ensure_images
from bench.stack20 import N_SERVICES, AgentDevice, ComposeProject, cleanup, project_name, running_ids, stack_yaml


def check_one_replaced(client: docker.DockerClient, project: str, before: set[str]) -> set[str]:
    after = running_ids(client, project)
    if len(after) != N_SERVICES or len(before - after) != 1:
        raise RuntimeError(f"{project}: expected exactly one of {N_SERVICES} containers replaced, "
                           f"{len(before - after)} were; {len(after)} running")
    return after


def fmt_row(label: str, xs: list[float], unit: str = "s") -> str:
    def f(x: float) -> str:
        return f"{x:.2f} s" if unit == "s" else f"{x:.2f}"

    return f"| {label} | {f(statistics.median(xs))} | {f(min(xs))} | {f(max(xs))} |"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.update_one", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    args = p.parse_args(argv)
    client = docker.DockerClient(timeout=120)
    ensure_images(client)
    agent_p, compose_p = project_name("gebupd"), project_name("gebupdc")
    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    c_gone: list[float] = []
    b2: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gebench-") as tmp:
            dev = AgentDevice(Path(tmp) / "agent", agent_p)
            dev.init(stack_yaml("v1"))
            dev.sync()
            peer = ComposeProject(Path(tmp) / "compose", compose_p, compose_bin())
            peer.write(stack_yaml("v1"))
            peer.up("--wait")
            ids = {agent_p: running_ids(client, agent_p), compose_p: running_ids(client, compose_p)}
            agent = daemon_agent(dev)
            agent._sync_once()  # warm: imports, connections (nothing to change)
            for i in range(args.reps):
                for tag, own, peer_times in (("v2", a, b), ("v1", c, b2)):
                    yaml = stack_yaml(tag)
                    dev.commit(yaml, f"web -> {tag}, rep {i}")
                    if own is a:
                        own.append(dev.sync())
                    else:
                        t0 = time.monotonic()
                        agent._sync_once()
                        own.append(time.monotonic() - t0)
                        if agent.failures:
                            raise RuntimeError("the daemon's update failed")
                        rec = agent._rec
                        assert rec is not None
                        rec.switch.settle()  # the old web stopped and removed (the next tick would wait)
                        c_gone.append(time.monotonic() - t0)
                    ids[agent_p] = check_one_replaced(client, agent_p, ids[agent_p])
                    peer.write(yaml)
                    peer_times.append(peer.up("--wait", "--wait-timeout", "120"))
                    ids[compose_p] = check_one_replaced(client, compose_p, ids[compose_p])
                print(f"rep {i + 1}/{args.reps}: (a) {a[-1]:.2f}s (b) {b[-1]:.2f}s (c) {c[-1]:.2f}s "
                      f"(c+) {c_gone[-1]:.2f}s (b') {b2[-1]:.2f}s", file=sys.stderr, flush=True)
    finally:
        cleanup(client, agent_p, compose_p)
    ratio = statistics.median(a) / statistics.median(b)
    print(f"| update 1 of {N_SERVICES} services to healthy (n={args.reps}) | median | min | max |")
    print("|---|---|---|---|")
    print(fmt_row("(a) `gitops-edge sync` process (commit already made)", a))
    print(fmt_row("(b) Compose: `up -d --wait` (peer)", b))
    print(fmt_row("(a)/(b), per repetition", [x / y for x, y in zip(a, b, strict=True)], unit="x"))
    print(f"| (a)/(b), of the medians | {ratio:.2f} | | |")
    print(fmt_row("(c) daemon's tick in process (commit already made)", c))
    print(fmt_row("(c+) the same, until the replaced container is removed", c_gone))
    print(fmt_row("(b') Compose: `up -d --wait`, the same move (peer)", b2))
    print(fmt_row("(c)/(b'), per repetition", [x / y for x, y in zip(c, b2, strict=True)], unit="x"))
    ratio_c = statistics.median(c) / statistics.median(b2)
    print(f"| (c)/(b'), of the medians | {ratio_c:.2f} | | |")
    ratio_gone = statistics.median(c_gone) / statistics.median(b2)
    print(f"| (c+)/(b'), of the medians | {ratio_gone:.2f} | | |")
    summary.add(f"update 1 of {N_SERVICES} services to healthy: `gitops-edge sync`", f"{statistics.median(a):.2f} s",
                "Compose `up -d --wait`", f"{statistics.median(b):.2f} s", ratio)
    summary.add(f"update 1 of {N_SERVICES} services to healthy: daemon tick", f"{statistics.median(c):.2f} s",
                "Compose `up -d --wait`", f"{statistics.median(b2):.2f} s", ratio_c, "<= 1", ratio_c <= 1)
    summary.add(f"update 1 of {N_SERVICES} services: daemon tick until the old container is removed",
                f"{statistics.median(c_gone):.2f} s", "Compose `up -d --wait`", f"{statistics.median(b2):.2f} s",
                ratio_gone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
