"""The arm64 (or arm/v7) agent under QEMU next to the amd64 agent: idle RSS and the no-change daemon cycle.

Both agents are two platforms of one multi-arch agent image (built by
``scripts/build-image --offline --platforms linux/amd64,linux/arm64,linux/arm/v7`` and kept
in the test registry, see ``tests/support/agent_image.py``), run at the same
time as containers the way deploy/compose.yaml runs them, each keeping its own
one-service stack of a tiny multi-arch image (the arm64 agent with
``device.platform: linux/arm64``, as on a Pi; ``--platform linux/arm/v7`` for a 32-bit Pi). Each daemon polls every 2 s;
the cycle time is the one the agent logs itself (``sync unchanged at fetch in X.XXs``,
a DEBUG line since an idle poll logs nothing at INFO; the idle short-circuit's cycle),
the RSS is ``VmRSS`` of the agent process read from the host after its first
sync. Under user-mode emulation the ARM process is a QEMU process that
translates code as it runs: its RSS holds QEMU and the translated code too,
and every cycle pays the translation, so both figures are worse than on a real
ARM board; they bound, not predict, a Raspberry Pi.

Usage: ``.venv/bin/python -m bench.emulated_arm64 [--reps N] [--platform linux/arm/v7]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import docker

from bench import summary

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "127.0.0.1:5055"
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
DEBIAN_ARCH = {"linux/amd64": "amd64", "linux/arm64": "arm64", "linux/arm/v7": "armhf"}
CYCLE = re.compile(r"sync unchanged (?:at \S+ )?in ([0-9.]+)s")  # "sync unchanged at plan in 0.06s"


def vm_rss_mib(pid: int) -> float:
    m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert m is not None
    return int(m.group(1)) / 1024


class Agent:
    """One agent container following its own Git repo (``file:///fleet``) with a one-service stack."""

    def __init__(self, client: docker.DockerClient, image_id: str, platform: str, app: str, work: Path) -> None:
        from tests.conftest import commit_files, git

        arch = DEBIAN_ARCH[platform]
        self.client, self.arch = client, arch
        self.stack = f"gebarm-{arch}-{uuid.uuid4().hex[:6]}"
        self.volume = self.stack + "-state"
        conf, repo = work / arch / "etc", work / arch / "fleet"
        conf.mkdir(parents=True)
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        commit_files(repo, {f"devices/d/{self.stack}/compose.yaml": f"services:\n  app:\n    image: {app}\n"})
        conf.joinpath("config.yaml").write_text(
            f"device: {{id: bench-{arch}, platform: {platform}}}\n"
            "source: {url: 'file:///fleet', ref: main, path: devices/d, interval: 2s, jitter: 0s, "
            "spread_start: false}\n"
            "state_dir: /var/lib/gitops-edge\n"
            "health: {timeout: 120s, stable_for: 1s}\n"
            "status: {listen: ''}\n"  # host network: two agents, no shared port
        )
        client.volumes.create(self.volume)
        self.container = client.containers.run(
            image_id, ["--log-level", "debug", "run"], detach=True, read_only=True,
            tmpfs={"/tmp": "size=64m,mode=1777"},
            network_mode="host",  # the test registry is on the host's loopback
            volumes={
                "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                self.volume: {"bind": "/var/lib/gitops-edge", "mode": "rw"},
                str(conf): {"bind": "/etc/gitops-edge", "mode": "ro"},
                str(repo): {"bind": "/fleet", "mode": "ro"},
            },
        )

    def cycles(self) -> list[float]:
        return [float(x) for x in CYCLE.findall(self.container.logs().decode(errors="replace"))]

    def rss_mib(self) -> float:
        self.container.reload()
        return vm_rss_mib(int(self.container.attrs["State"]["Pid"]))

    def close(self) -> None:
        from tests.support.cleanup import remove_project

        try:
            self.container.remove(force=True)
        except docker.errors.APIError:
            pass
        remove_project(self.client, self.stack)
        try:
            self.client.volumes.get(self.volume).remove(force=True)
        except docker.errors.APIError:
            pass


def row(label: str, a: list[float], b: list[float], unit: str) -> str:
    fa, fb = statistics.median(a), statistics.median(b)
    f = (lambda x: f"{x * 1000:.0f} ms") if unit == "s" else (lambda x: f"{x:.1f} MiB")
    return f"| {label} | {f(fb)} | {f(fa)} | {fb / fa:.2f} | {f(min(b))}-{f(max(b))} | {f(min(a))}-{f(max(a))} |"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.emulated_arm64", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=9, help="no-change cycles per agent (default 9)")
    p.add_argument("--platform", default="linux/arm64", choices=["linux/arm64", "linux/arm/v7"],
                   help="the emulated agent's platform (default linux/arm64)")
    args = p.parse_args(argv)
    emu = DEBIAN_ARCH[args.platform]
    platforms = ("linux/amd64", args.platform)
    sys.path.insert(0, str(ROOT))
    from tests.support.agent_image import multiarch_agent_index, pull_platform
    from tests.support.images import push_multiarch

    client = docker.DockerClient(timeout=300)
    print("bench.emulated_arm64: the multi-arch agent image (built once per tree)", file=sys.stderr)
    index = multiarch_agent_index(REGISTRY)
    images = {p: pull_platform(client, index, p) for p in platforms}
    app = push_multiarch(f"{REGISTRY}/gebench/arm-{uuid.uuid4().hex[:8]}:v1", version="v1",
                         arches=("amd64", emu), cmd=IDLE).ref
    agents: list[Agent] = []
    rss: dict[str, list[float]] = {"amd64": [], emu: []}
    try:
        with tempfile.TemporaryDirectory(prefix="gebench-arm-") as tmp:
            agents = [Agent(client, images[p], p, app, Path(tmp)) for p in platforms]
            deadline = time.monotonic() + 300 + 20 * args.reps
            while any(len(ag.cycles()) < args.reps for ag in agents):
                for ag in agents:
                    if ag.cycles():  # idle between polls, after the first no-change one
                        rss[ag.arch].append(ag.rss_mib())
                    ag.container.reload()
                    if ag.container.status != "running":
                        raise RuntimeError(f"{ag.arch} agent stopped:\n{ag.container.logs().decode()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the agents did not log enough no-change cycles:\n" + "\n".join(
                        ag.container.logs().decode()[-2000:] for ag in agents))
                time.sleep(1.0)
            cycles = {ag.arch: ag.cycles()[: args.reps] for ag in agents}
    finally:
        for ag in agents:
            ag.close()
    uname = subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
    name = args.platform.removeprefix("linux/")
    print(f"Both agents at once on this {uname} host, {args.reps} no-change cycles each; {name} under QEMU user "
          "emulation (slower than a real ARM board).\n")
    print(f"| measure | {name} (emulated) | amd64 (native) | ratio {name}/amd64 | {name} min-max | amd64 min-max |")
    print("|---|---|---|---|---|---|")
    print(row("idle daemon RSS", rss["amd64"], rss[emu], "MiB"))
    print(row("no-change daemon cycle (agent's own log)", cycles["amd64"], cycles[emu], "s"))
    ra, rb = statistics.median(rss["amd64"]), statistics.median(rss[emu])
    ca, cb = statistics.median(cycles["amd64"]), statistics.median(cycles[emu])
    summary.add(f"idle daemon RSS, {name} agent under QEMU", f"{rb:.1f} MiB", "the amd64 agent, same image index",
                f"{ra:.1f} MiB", rb / ra)
    summary.add(f"no-change daemon cycle, {name} agent under QEMU", f"{cb * 1000:.0f} ms",
                "the amd64 agent, same image index", f"{ca * 1000:.0f} ms", cb / ca)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
