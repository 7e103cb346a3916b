"""The no-change poll: what a sync costs when nothing changed, against Compose.

A 20-service stack (``bench.stack20``) is deployed once by gitops-edge and once,
as the peer, by ``docker-compose up -d``. Per repetition, interleaved:

(a) a whole ``gitops-edge sync`` process (Python start, imports, ls-remote,
    load, observe, plan): wall time;
(b) Compose, the peer: ``docker-compose -p P up -d`` on the same, already
    running file (it recreates nothing): wall time;
(c) the daemon's per-poll cost: ``gitops_edge.daemon.loop.Agent._sync_once``, what
    ``gitops-edge run`` executes on each tick (sync lock, state store,
    reconciler, ``sync()``, metrics and notifications), called in this process
    after a warm-up.

Targets (issue 5): (c) <= 0.5 x (b); (a) <= 2 x (b).

Usage: ``.venv/bin/python -m bench.sync_noop [--reps N]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import docker

from bench import summary
from bench.rollback import compose_bin, ensure_images
from bench.stack20 import N_SERVICES, AgentDevice, ComposeProject, cleanup, project_name, running_ids, stack_yaml


def daemon_cycle(device: AgentDevice) -> Callable[[], None]:
    """One tick of the daemon: ``Agent._sync_once`` itself (its scheduler is never started)."""
    from gitops_edge.adapters.files.config_file import load_config
    from gitops_edge.daemon.loop import Agent
    from gitops_edge.wiring import Wiring

    wiring = Wiring(load_config(device.config))
    agent = Agent(wiring.config, wiring)

    def cycle() -> None:
        agent._sync_once()
        if agent.failures:
            raise RuntimeError("the daemon's sync failed; see the log above")

    return cycle


def fmt_row(label: str, xs: list[float], unit: str = "s") -> str:
    def f(x: float) -> str:
        return f"{x * 1000:.0f} ms" if unit == "s" else f"{x:.2f}"

    return f"| {label} | {f(statistics.median(xs))} | {f(min(xs))} | {f(max(xs))} |"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.sync_noop", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    args = p.parse_args(argv)
    client = docker.DockerClient(timeout=120)
    ensure_images(client)
    yaml = stack_yaml()
    agent_p, compose_p = project_name("gebnoop"), project_name("gebnoopc")
    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gebench-") as tmp:
            dev = AgentDevice(Path(tmp) / "agent", agent_p)
            dev.init(yaml)
            dev.sync()
            peer = ComposeProject(Path(tmp) / "compose", compose_p, compose_bin())
            peer.write(yaml)
            peer.up("--wait")
            for proj in (agent_p, compose_p):
                if len(running_ids(client, proj)) != N_SERVICES:
                    raise RuntimeError(f"{proj}: not all {N_SERVICES} services are running")
            before = running_ids(client, agent_p), running_ids(client, compose_p)
            cycle = daemon_cycle(dev)
            for _ in range(2):  # warm-up: imports, connections, page cache
                cycle()
                dev.sync()
                peer.up()
            for i in range(args.reps):
                a.append(dev.sync())
                b.append(peer.up())
                t0 = time.monotonic()
                cycle()
                c.append(time.monotonic() - t0)
                print(f"rep {i + 1}/{args.reps}: (a) {a[-1]:.3f}s (b) {b[-1]:.3f}s (c) {c[-1]:.3f}s",
                      file=sys.stderr, flush=True)
            if (running_ids(client, agent_p), running_ids(client, compose_p)) != before:
                raise RuntimeError("a no-change sync or up replaced containers")
    finally:
        cleanup(client, agent_p, compose_p)
    ma, mb, mc = (statistics.median(x) for x in (a, b, c))
    ok = {True: "met", False: "**missed**"}
    print(f"| no-change sync, {N_SERVICES} services (n={args.reps}) | median | min | max |")
    print("|---|---|---|---|")
    print(fmt_row("(a) `gitops-edge sync` process", a))
    print(fmt_row("(b) Compose: `up -d`, nothing to do (peer)", b))
    print(fmt_row("(c) daemon's cycle in process (warm)", c))
    print(fmt_row("(a)/(b), per repetition", [x / y for x, y in zip(a, b, strict=True)], unit="x"))
    print(fmt_row("(c)/(b), per repetition", [x / y for x, y in zip(c, b, strict=True)], unit="x"))
    print()
    print("| measure | ratio of medians | target | |")
    print("|---|---|---|---|")
    print(f"| no-change sync process / Compose `up -d` | {ma / mb:.2f} | <= 2 | {ok[ma / mb <= 2]} |")
    print(f"| no-change daemon cycle / Compose `up -d` | {mc / mb:.2f} | <= 0.5 | {ok[mc / mb <= 0.5]} |")
    summary.add(f"no-change `gitops-edge sync` process, {N_SERVICES} services", f"{ma * 1000:.0f} ms",
                "Compose `up -d`, nothing to do", f"{mb * 1000:.0f} ms", ma / mb, "<= 2", ma / mb <= 2)
    summary.add("no-change daemon cycle (in process)", f"{mc * 1000:.0f} ms",
                "Compose `up -d`, nothing to do", f"{mb * 1000:.0f} ms", mc / mb, "<= 0.5", mc / mb <= 0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
