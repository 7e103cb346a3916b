"""Flash wear: a daemon polling a repository where nothing changes writes nothing to storage.

The real daemon (``python -m gitops_edge run``) deploys one stack, then polls every
0.5 s. ``/proc/PID/io`` ``write_bytes`` counts every byte the process, and the git
children it has reaped, caused to be written to storage (SQLite, the Git cache, its
log, which goes to a file here). After the deploy and the first no-op (full) sync it
must not grow at all over 30 further polls (the issue asks for 100; 30 at 0.5 s keep
this test near 20 s, and any per-poll write shows up in 30 as surely as in 100).
Drift (a container removed by hand) is still repaired within an interval.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.integration.agent_harness import Device
from tests.integration.test_daemon import Daemon, serving, stack, wait_for

POLLS = 30
INTERVAL_S = 0.5


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise AssertionError("no write_bytes in /proc/PID/io")


def status_port(d: Daemon) -> int:
    for line in d.output().splitlines():
        if "status on http://" in line:
            return int(line.rsplit(":", 1)[1].split("/")[0])
    raise AssertionError(f"no status line:\n{d.output()}")


def unchanged_polls(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as r:
        return int(json.load(r)["unchanged_polls"]["count"])


def test_idle_polls_write_nothing_and_drift_is_still_repaired(
        device: Device, stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.interval, device.jitter = f"{int(INTERVAL_S * 1000)}ms", "0s"
    device.extra_config = "retention: {full_check: 1h}\n"
    rev = device.commit({"README.md": "d1\n", f"{s}/compose.yaml": stack(test_images["v1"])}, "deploy")
    d = Daemon(device)
    try:
        wait_for("the deploy", lambda: serving(device, s, rev), 60, d)
        port = status_port(d)
        wait_for("the first no-op polls", lambda: unchanged_polls(port) >= 3, 30, d)
        before, polls_before = write_bytes(d.proc.pid), unchanged_polls(port)
        wait_for(f"{POLLS} idle polls", lambda: unchanged_polls(port) >= polls_before + POLLS, 60, d)
        grown = write_bytes(d.proc.pid) - before
        polls = unchanged_polls(port) - polls_before
        assert grown == 0, f"{grown} bytes written over {polls} idle polls ({grown / polls:.0f} per poll)"

        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert any(line.startswith("gitops_edge_unchanged_polls ") and float(line.split()[1]) >= POLLS
                   for line in metrics.splitlines()), metrics
        # the per-stack series the deploy set stand through idle polls (they are not rebuilt per poll)
        assert f'gitops_edge_applied_revision_info{{revision="{rev}",stack="{s}"}} 1.0' in metrics, metrics

        # drift: the web container removed by hand comes back within an interval or two
        web = device.containers(s)[f"{s}-web-1"]
        web.remove(force=True)
        wait_for("the removed container to be repaired", lambda: serving(device, s, rev), 30, d)

        def outcomes() -> list[str]:
            return [h["outcome"] for h in json.loads(device.cli("history", "--json").stdout)]

        wait_for("the repair in the history", lambda: outcomes().count("applied") == 2, 30, d)
        assert outcomes() == ["applied", "applied"]  # the deploy and the repair; no unchanged polls
    finally:
        d.close()
