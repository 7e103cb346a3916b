"""A commit that can never apply (invalid, refused) is not retried until the ref moves."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from gitops_edge.demo import tinyimage
from tests.integration.agent_harness import ROOT, Device
from tests.support.net import wait_for

SERVE = json.dumps(tinyimage.SERVE)  # a YAML flow sequence for `command:`


def history(dev: Device) -> list[dict[str, object]]:
    out = dev.cli("history", "--json")
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def test_invalid_commit_is_parked_until_the_ref_moves(device: Device, stack_name: str,
                                                     test_images: dict[str, str]) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    device.interval, device.jitter = "1s", "0s"
    bad = device.commit({"README.md": "d\n", f"{s}/compose.yaml": "services:\n  web:\n    imagee: x\n"}, "typo")
    proc = subprocess.Popen([sys.executable, "-m", "gitops_edge", "--config", str(device.config), "run"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        first = wait_for(lambda: [h for h in history(device) if h["outcome"]], 30, "the first finished sync")
        assert first[0]["outcome"] == "error" and first[0]["revision"] == bad
        time.sleep(4)  # several 1 s polls: each asks the remote, none re-runs the sync
        assert len(history(device)) == 1, history(device)

        good = device.commit({f"{s}/compose.yaml": f"services:\n  web:\n    image: {test_images['v1']}\n"
                                                   f"    command: {SERVE}\n"}, "fixed")
        latest = wait_for(lambda: [h for h in history(device) if h["revision"] == good], 60, "the fixed commit")
        assert latest[0]["outcome"] == "applied"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
