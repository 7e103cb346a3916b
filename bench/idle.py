"""The idle daemon: what a poll costs when nothing moved, at 1, 10 and 30 stacks, against Compose.

A gitops-edge device follows a repo holding N small stacks (2 idle services each;
30 stacks are 60 containers), deployed by one sync. The daemon's tick
(``Agent._sync_once``, what ``gitops-edge run`` executes per poll, in this process)
is measured after two warm-up ticks: the first no-op tick is a full sync that arms
the idle short-circuit (``engine/idle.py``), the next ones stop at FETCH after
one ls-remote and one container list. For each N, interleaved with the peer:

(a) idle tick: the daemon's cycle with the short-circuit armed;
(b) full tick: the same cycle with the memo forgotten first (load, pin, observe, plan),
    what every poll cost before;
(c) Compose, the peer: ``docker-compose up -d`` of the 20-service stack, nothing to do;
(d) bytes written to storage per idle tick (``/proc/self/io`` ``write_bytes``, git
    children included) over all repetitions.

Targets (issue 16): (a) <= 0.2 x (c) and flat from 1 to 30 stacks; (d) = 0.

Usage: ``.venv/bin/python -m bench.idle [--reps N]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import docker

from bench import summary
from bench.rollback import IDLE, IMAGE, compose_bin, ensure_images, git_commit
from bench.stack20 import AgentDevice, ComposeProject, cleanup, cmd, project_name, stack_yaml

if TYPE_CHECKING:
    from gitops_edge.daemon.loop import Agent

LEVELS = (1, 10, 30)


def small_stack() -> str:
    return "services:\n" + "".join(
        f"  s{i}:\n    image: {IMAGE}:v1\n    command: {cmd(IDLE)}\n"
        "    network_mode: none\n    restart: unless-stopped\n"
        for i in (1, 2)
    )


def daemon_agent(device: AgentDevice) -> Agent:
    """The daemon of ``gitops-edge run`` without its scheduler: ``_sync_once`` is one tick."""
    from gitops_edge.adapters.files.config_file import load_config
    from gitops_edge.daemon.loop import Agent
    from gitops_edge.wiring import Wiring

    wiring = Wiring(load_config(device.config))
    return Agent(wiring.config, wiring)


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.idle", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=7, help="repetitions per level (default 7)")
    args = p.parse_args(argv)
    client = docker.DockerClient(timeout=120)
    ensure_images(client)
    prefix = project_name("gebidle")
    names = [f"{prefix}s{i:02d}" for i in range(max(LEVELS))]
    compose_p = project_name("gebidlec")
    rows: list[tuple[int, float, float, float, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gebench-") as tmp:
            dev = AgentDevice(Path(tmp) / "agent", names[0], extra_config="retention: {full_check: 1h}\n")
            dev.init(small_stack())
            peer = ComposeProject(Path(tmp) / "compose", compose_p, compose_bin())
            peer.write(stack_yaml())
            peer.up("--wait")
            for level in LEVELS:
                if level > 1:
                    git_commit(dev.repo, {f"devices/d1/{n}/compose.yaml": small_stack() for n in names[:level]},
                               f"{level} stacks")
                dev.sync()
                agent = daemon_agent(dev)
                cycle = agent._sync_once
                for _ in range(2):
                    cycle()
                    peer.up()
                idle: list[float] = []
                full: list[float] = []
                comp: list[float] = []
                written = 0
                for i in range(args.reps):
                    w0 = write_bytes()
                    t0 = time.monotonic()
                    cycle()
                    idle.append(time.monotonic() - t0)
                    written += write_bytes() - w0
                    if agent._rec is None or not agent._rec.last_idle or agent.failures:
                        raise RuntimeError("the idle short-circuit did not hold")
                    comp.append(peer.up())
                    agent._rec.idle.forget()
                    t0 = time.monotonic()
                    cycle()
                    full.append(time.monotonic() - t0)
                    cycle()  # re-arms nothing new; the next measured tick is idle again
                    print(f"{level} stacks, rep {i + 1}/{args.reps}: idle {idle[-1] * 1000:.0f} ms, "
                          f"full {full[-1] * 1000:.0f} ms, compose {comp[-1] * 1000:.0f} ms",
                          file=sys.stderr, flush=True)
                rows.append((level, statistics.median(idle), statistics.median(full), statistics.median(comp),
                             written / args.reps))
    finally:
        cleanup(client, compose_p, *names)
    print(f"| stacks (2 services each), n={args.reps} | idle tick | full tick | Compose `up -d` (20 services) "
          "| idle / Compose | bytes written per idle tick |")
    print("|---|---|---|---|---|---|")
    for level, i, f, c, w in rows:
        print(f"| {level} | {i * 1000:.0f} ms | {f * 1000:.0f} ms | {c * 1000:.0f} ms | {i / c:.2f} | {w:.0f} |")
    worst = max(i / c for _, i, _, c, _ in rows)
    flat = max(i for _, i, _, _, _ in rows) / min(i for _, i, _, _, _ in rows)
    wrote = max(w for *_, w in rows)
    for level, i, _f, c, _w in rows:
        summary.add(f"idle daemon tick, {level} stack(s)", f"{i * 1000:.0f} ms",
                    "Compose `up -d` (20 services), nothing to do", f"{c * 1000:.0f} ms", i / c, "<= 0.2",
                    i / c <= 0.2)
    summary.add("idle tick, 30 stacks / 1 stack", f"{flat:.2f}x", "", "", None, "flat", flat <= 1.5)
    summary.add("bytes written per idle tick", f"{wrote:.0f} B", "", "", None, "0", wrote == 0)
    print()
    print(f"worst idle/Compose {worst:.2f} (target <= 0.2); 30 vs 1 stack {flat:.2f}x; "
          f"bytes per idle tick {wrote:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
