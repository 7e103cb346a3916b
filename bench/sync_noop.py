"""The no-change poll: what a sync costs when nothing changed, against Compose.

A 20-service stack (``bench.stack20``) is deployed once by gitops-edge and once,
as the peer, by ``docker-compose up -d``. Per repetition, interleaved:

(a) a whole ``gitops-edge sync`` process: wall time. After the full no-change
    sync of the warm-up it answers from the idle memo kept in the store (Python
    start, imports, agent config, one ls-remote, one container list); the bench
    counts the repetitions that did (``quick``);
(b) Compose, the peer: ``docker-compose -p P up -d`` on the same, already
    running file (it recreates nothing): wall time;
(c) the daemon's per-poll cost: ``gitops_edge.daemon.loop.Agent._sync_once``, what
    ``gitops-edge run`` executes on each tick (sync lock, state store,
    reconciler, ``sync()``, metrics and notifications), called in this process
    after a warm-up;
(d) a whole ``gitops-edge status`` process (agent config, the store, one
    container list): wall time;
(e) Compose's comparable command, the peer of (d): ``docker-compose -p P ps``,
    the services of one project with their state and health, which is what
    ``status`` shows per stack (``ls`` is cheaper still but shows only a
    project's name and a count of states: measured too, for reference).

(f) the floor of any Python command line: ``python -c pass``, and (g) of one
    that reads a YAML config and a SQLite store and talks to a socket: the same
    interpreter importing only the libraries ``status`` cannot do without
    (``FLOOR_IMPORTS``), for reference.

With ``--baseline DIR`` (another checkout of gitops-edge, e.g. the main branch
before a change), (a) and (d) are also run from there on the same device,
interleaved: a before/after in one run on the same load.

Targets (issue 5, issue 16): (c) <= 0.5 x (b); (a) <= 2 x (b); (d) <= 1 x (e).

The package's modules are byte-compiled first, as an installed package's are
(``pip install`` writes them): with ``PYTHONDONTWRITEBYTECODE`` set, as in some
shells here, every process would otherwise compile them from source again.

The processes are ``python -m gitops_edge`` run from the checkout with this
interpreter (so ``--baseline`` can run another checkout the same way): with the
repository's editable venv, whose ``.pth`` finder ``site`` imports at every
start. A wheel install (a device) starts bare Python ~10 ms faster; whole
commands differ by a few ms (docs/benchmarks.md, "Start-up, second round").

Usage: ``.venv/bin/python -m bench.sync_noop [--reps N]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import docker

from bench import summary
from bench.rollback import ROOT, check, compose_bin, ensure_images, run
from bench.stack20 import (
    N_SERVICES,
    AgentDevice,
    ComposeProject,
    cleanup,
    project_name,
    running_ids,
    stack_yaml,
)

FLOOR_IMPORTS = "import argparse, dataclasses, json, logging, socket, sqlite3, subprocess, yaml"


def timed(argv: list[str], cwd: Path, what: str) -> tuple[float, str]:
    """One process: (wall time, stdout); it must succeed."""
    t0 = time.monotonic()
    out = run(argv, cwd)
    took = time.monotonic() - t0
    check(out, what)
    return took, out.stdout


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
    p.add_argument("--baseline", type=Path, help="another checkout whose sync and status also run, interleaved")
    args = p.parse_args(argv)
    for tree in (ROOT, *([args.baseline] if args.baseline else [])):
        compileall.compile_dir(tree / "gitops_edge", quiet=1)
    client = docker.DockerClient(timeout=120)
    ensure_images(client)
    yaml = stack_yaml()
    agent_p, compose_p = project_name("gebnoop"), project_name("gebnoopc")
    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    d: list[float] = []
    e: list[float] = []
    ls: list[float] = []
    bare: list[float] = []
    floor: list[float] = []
    a0: list[float] = []
    d0: list[float] = []
    quick = 0
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
            dc = [peer.dc, "-p", compose_p]
            for _ in range(2):  # warm-up: imports, connections, page cache; the first sync arms the memo
                cycle()
                dev.sync()
                peer.up()
                timed(dev.argv("status"), ROOT, "gitops-edge status")
                timed([*dc, "ps"], peer.work, "docker-compose ps")
            for i in range(args.reps):
                took, out = timed(dev.argv("sync"), ROOT, "gitops-edge sync")
                a.append(took)
                quick += out.startswith("unchanged: ")  # a full sync prints its plan lines first
                b.append(peer.up())
                t0 = time.monotonic()
                cycle()
                c.append(time.monotonic() - t0)
                d.append(timed(dev.argv("status"), ROOT, "gitops-edge status")[0])
                e.append(timed([*dc, "ps"], peer.work, "docker-compose ps")[0])
                ls.append(timed([peer.dc, "ls"], peer.work, "docker-compose ls")[0])
                bare.append(timed([sys.executable, "-c", "pass"], ROOT, "python -c pass")[0])
                floor.append(timed([sys.executable, "-c", FLOOR_IMPORTS], ROOT, "python -c import")[0])
                if args.baseline:
                    a0.append(timed(dev.argv("sync"), args.baseline, "baseline sync")[0])
                    d0.append(timed(dev.argv("status"), args.baseline, "baseline status")[0])
                print(f"rep {i + 1}/{args.reps}: (a) {a[-1]:.3f}s (b) {b[-1]:.3f}s (c) {c[-1]:.3f}s "
                      f"(d) {d[-1]:.3f}s (e) {e[-1]:.3f}s ls {ls[-1]:.3f}s", file=sys.stderr, flush=True)
            if (running_ids(client, agent_p), running_ids(client, compose_p)) != before:
                raise RuntimeError("a no-change sync or up replaced containers")
    finally:
        cleanup(client, agent_p, compose_p)
    ma, mb, mc, md, me = (statistics.median(x) for x in (a, b, c, d, e))
    ok = {True: "met", False: "**missed**"}
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"| no-change sync, {N_SERVICES} services (n={args.reps}, load average {load}) | median | min | max |")
    print("|---|---|---|---|")
    print(fmt_row(f"(a) `gitops-edge sync` process ({quick}/{args.reps} answered from the memo)", a))
    print(fmt_row("(b) Compose: `up -d`, nothing to do (peer)", b))
    print(fmt_row("(c) daemon's cycle in process (warm)", c))
    print(fmt_row("(d) `gitops-edge status` process", d))
    print(fmt_row("(e) Compose: `ps` of the project (peer of d)", e))
    print(fmt_row("Compose: `ls` (for reference)", ls))
    print(fmt_row("(f) bare Python start, `python -c pass` (for reference)", bare))
    print(fmt_row("(g) Python importing yaml, sqlite3, argparse, logging, json, socket (for reference)", floor))
    if args.baseline:
        print(fmt_row(f"(a0) `sync` process of {args.baseline}", a0))
        print(fmt_row(f"(d0) `status` process of {args.baseline}", d0))
    print(fmt_row("(a)/(b), per repetition", [x / y for x, y in zip(a, b, strict=True)], unit="x"))
    print(fmt_row("(c)/(b), per repetition", [x / y for x, y in zip(c, b, strict=True)], unit="x"))
    print(fmt_row("(d)/(e), per repetition", [x / y for x, y in zip(d, e, strict=True)], unit="x"))
    print()
    print("| measure | ratio of medians | target | |")
    print("|---|---|---|---|")
    print(f"| no-change sync process / Compose `up -d` | {ma / mb:.2f} | <= 2 | {ok[ma / mb <= 2]} |")
    print(f"| no-change daemon cycle / Compose `up -d` | {mc / mb:.2f} | <= 0.5 | {ok[mc / mb <= 0.5]} |")
    print(f"| `status` process / Compose `ps` | {md / me:.2f} | <= 1 | {ok[md / me <= 1]} |")
    if args.baseline:
        ma0, md0 = statistics.median(a0), statistics.median(d0)
        print(f"| baseline: no-change sync process / Compose `up -d` | {ma0 / mb:.2f} | | |")
        print(f"| baseline: `status` process / Compose `ps` | {md0 / me:.2f} | | |")
    summary.add(f"no-change `gitops-edge sync` process, {N_SERVICES} services", f"{ma * 1000:.0f} ms",
                "Compose `up -d`, nothing to do", f"{mb * 1000:.0f} ms", ma / mb, "<= 2", ma / mb <= 2)
    summary.add("`gitops-edge status` process", f"{md * 1000:.0f} ms", "Compose `ps` of the project",
                f"{me * 1000:.0f} ms", md / me, "<= 1", md / me <= 1)
    summary.add("no-change daemon cycle (in process)", f"{mc * 1000:.0f} ms",
                "Compose `up -d`, nothing to do", f"{mb * 1000:.0f} ms", mc / mb, "<= 0.5", mc / mb <= 0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
