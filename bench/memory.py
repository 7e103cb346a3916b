"""Memory: the idle daemon and a whole sync, against a bare Python process.

Peer: ``python -c pass`` (same interpreter), peak RSS by ``/usr/bin/time -v``.
On a small stack (``web`` and two idle services of ``bench.stack20``, local
tiny images), per repetition:

(a) idle RSS of the daemon: ``gitops-edge run`` (interval 1 h, no spread) is
    started, its first sync (no change) finishes, 2 s later ``VmRSS`` is read
    from ``/proc/PID/status``; then SIGTERM;
(b) peak RSS of a whole no-change ``gitops-edge sync`` (``Maximum resident set
    size`` of ``/usr/bin/time -v``);
(c) the same with a trust policy (cosign key rule): needs the loopback
    registry of ``scripts/test-bench`` (127.0.0.1:5055), where the image is
    pushed and signed; skipped when it is not running. Its no-change sync uses
    the cached verdict; (d) a ``gitops-edge verify`` that really checks the
    signature (fresh state dir) shows the signature stack's cost.

Also checked once: which of ``cryptography`` and ``sigstore`` a sync imports.

Usage: ``.venv/bin/python -m bench.memory [--reps N]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import ast
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

import docker

from bench import summary
from bench.rollback import IMAGE, ROOT, ensure_images
from bench.stack20 import AgentDevice, cleanup, project_name, stack_yaml

REGISTRY = "127.0.0.1:5055"
TARGET_IDLE_MIB = 45.0
MODULES_CODE = (
    "import sys; from gitops_edge.cli.main import main; rc = main(sys.argv[1:]); "
    "print('IMPORTED', [m for m in ('cryptography', 'sigstore') if m in sys.modules], file=sys.stderr); "
    "sys.exit(rc)"
)


def peak_mib(argv: list[str], code: int = 0) -> float:
    """``Maximum resident set size`` of one whole process, in MiB."""
    out = subprocess.run(["/usr/bin/time", "-v", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode != code:
        raise RuntimeError(f"{argv}: exit {out.returncode}, wanted {code}\n{out.stdout}\n{out.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    if m is None:
        raise RuntimeError(f"no peak RSS from /usr/bin/time:\n{out.stderr}")
    return int(m.group(1)) / 1024


def vm_rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    assert m is not None
    return int(m.group(1)) / 1024


def daemon_idle_mib(dev: AgentDevice, settle_s: float = 2.0) -> tuple[float, list[str]]:
    """Start the daemon, wait for its first sync, read VmRSS; returns (MiB, mapped heavy libraries)."""
    proc = subprocess.Popen(dev.argv("run"), cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    synced = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if re.search(r"\bsync \w+ (?:at \w+ )?in [0-9.]+s", line):
                synced.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not synced.wait(120):
            raise RuntimeError("the daemon's first sync did not finish:\n" + "".join(lines))
        if not re.search(r"sync (unchanged|applied) (?:at \w+ )?in", "".join(lines)):
            raise RuntimeError("the daemon's first sync failed:\n" + "".join(lines))
        time.sleep(settle_s)
        rss = vm_rss_mib(proc.pid)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        heavy = sorted({n for n in ("cryptography", "pydantic_core") if f"/{n}/" in maps})
        return rss, heavy
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def imported(dev: AgentDevice, *args: str, code: int = 0) -> list[str]:
    argv = [sys.executable, "-c", MODULES_CODE, "--config", str(dev.config), *args]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode != code:
        raise RuntimeError(f"{args}: exit {out.returncode}\n{out.stderr}")
    m = re.search(r"^IMPORTED (\[.*\])$", out.stderr, re.M)
    assert m is not None, out.stderr
    return list(ast.literal_eval(m.group(1)))


def registry_up() -> bool:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=3):
            return True
    except OSError:
        return False


def signed_image(client: docker.DockerClient, keydir: Path) -> tuple[str, Path]:
    """Push the tiny v1 image to the loopback registry and sign it (cosign .sig, our key)."""
    sys.path.insert(0, str(ROOT))
    from gitops_edge.adapters.registry.client import RegistryClient
    from tests.support.cosign_signer import generate_key, push_legacy_signature
    from tests.support.images import push

    repo = f"{REGISTRY}/gebench/{uuid.uuid4().hex[:8]}/app"
    client.images.get(f"{IMAGE}:v1").tag(repo, "v1")
    digest = push(client, f"{repo}:v1")
    key = generate_key(keydir, "bench")
    push_legacy_signature(RegistryClient(), repo, digest, key)
    return f"{repo}:v1", key.public_path


def mib_row(label: str, xs: list[float], peer: float | None = None, target: str = "") -> str:
    ratio = f"{statistics.median(xs) / peer:.2f}" if peer else ""
    return (f"| {label} | {statistics.median(xs):.1f} MiB | {min(xs):.1f} | {max(xs):.1f} | {ratio} | {target} |")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.memory", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    args = p.parse_args(argv)
    client = docker.DockerClient(timeout=120)
    ensure_images(client)
    bare = [peak_mib([sys.executable, "-c", "pass"]) for _ in range(args.reps)]
    plain_p, trust_p = project_name("gebmem"), project_name("gebmemt")
    idle: list[float] = []
    peak: list[float] = []
    t_idle: list[float] = []
    t_peak: list[float] = []
    t_verify: list[float] = []
    notes: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gebench-") as tmp:
            dev = AgentDevice(Path(tmp) / "plain", plain_p, interval="3600s", spread_start=False)
            dev.init(stack_yaml(n=3))
            dev.sync()
            mods = imported(dev, "sync")
            notes.append(f"no trust policy: a sync imports {mods or 'neither cryptography nor sigstore'}")
            for i in range(args.reps):
                rss, heavy = daemon_idle_mib(dev)
                idle.append(rss)
                if heavy:
                    notes.append(f"idle daemon without trust maps {heavy}")
                peak.append(peak_mib(dev.argv("sync")))
                print(f"rep {i + 1}/{args.reps}: idle {rss:.1f} MiB, sync peak {peak[-1]:.1f} MiB",
                      file=sys.stderr, flush=True)
            if registry_up():
                ref, pub = signed_image(client, Path(tmp))
                repo = ref.rpartition(":")[0]
                trust = f"trust:\n  default: deny\n  images:\n    - match: '{repo}'\n      keys: ['{pub}']\n"
                tdev = AgentDevice(Path(tmp) / "trust", trust_p, interval="3600s", spread_start=False,
                                   extra_config=trust)
                tdev.init(stack_yaml(n=3).replace(f"{IMAGE}:v1", ref))
                tdev.sync()
                notes.append(f"trust policy, cached verdict: a sync imports {imported(tdev, 'sync') or 'neither'}")
                for i in range(args.reps):
                    rss, _ = daemon_idle_mib(tdev)
                    t_idle.append(rss)
                    t_peak.append(peak_mib(tdev.argv("sync")))
                    fresh = Path(tmp) / f"verify{i}.yaml"
                    fresh.write_text(tdev.config.read_text().replace(str(tdev.state_dir), str(Path(tmp) / f"vs{i}")))
                    t_verify.append(peak_mib([sys.executable, "-m", "gitops_edge", "--config", str(fresh),
                                              "verify", ref]))
                    print(f"rep {i + 1}/{args.reps} (trust): idle {rss:.1f} MiB, sync peak {t_peak[-1]:.1f} MiB, "
                          f"verify peak {t_verify[-1]:.1f} MiB", file=sys.stderr, flush=True)
                fresh = Path(tmp) / "verify-mods.yaml"
                fresh.write_text(tdev.config.read_text().replace(str(tdev.state_dir), str(Path(tmp) / "vsm")))
                argv_ = [sys.executable, "-c", MODULES_CODE, "--config", str(fresh), "verify", ref]
                out = subprocess.run(argv_, cwd=ROOT, capture_output=True, text=True, timeout=300)
                m = re.search(r"^IMPORTED (.*)$", out.stderr, re.M)
                notes.append(f"trust policy, verifying a signature: imports {m.group(1) if m else out.stderr}")
            else:
                notes.append(f"no registry on {REGISTRY}: trust-policy rows skipped (scripts/test-bench start)")
    finally:
        cleanup(client, plain_p, trust_p)
    mb = statistics.median(bare)
    met = "met" if statistics.median(idle) <= TARGET_IDLE_MIB else "**missed**"
    print(f"| memory (n={args.reps}) | median | min | max | / bare Python | target |")
    print("|---|---|---|---|---|---|")
    print(mib_row("bare `python -c pass`, peak (peer)", bare))
    print(mib_row("(a) idle daemon after its first sync, VmRSS", idle, mb, f"<= {TARGET_IDLE_MIB:.0f} MiB: {met}"))
    print(mib_row("(b) whole no-change `sync`, peak", peak, mb))
    if t_idle:
        print(mib_row("(c) with a trust policy: idle daemon, VmRSS", t_idle, mb))
        print(mib_row("(c) with a trust policy: no-change `sync` (cached verdict), peak", t_peak, mb))
        print(mib_row("(d) `verify` checking a cosign signature, peak", t_verify, mb))
    print()
    peer = f"{mb:.1f} MiB"
    mi = statistics.median(idle)
    summary.add("idle daemon RSS", f"{mi:.1f} MiB", "`python -c pass`", peer, mi / mb,
                f"<= {TARGET_IDLE_MIB:.0f} MiB", mi <= TARGET_IDLE_MIB)
    summary.add("whole no-change `sync`, peak RSS", f"{statistics.median(peak):.1f} MiB", "`python -c pass`", peer,
                statistics.median(peak) / mb)
    if t_verify:
        summary.add("`verify` of a cosign signature, peak RSS", f"{statistics.median(t_verify):.1f} MiB",
                    "`python -c pass`", peer, statistics.median(t_verify) / mb)
    for n in dict.fromkeys(notes):
        print(f"- {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
