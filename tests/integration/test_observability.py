"""The daemon on a device: /healthz /readyz /status /metrics, webhooks, JSON logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gitops_edge.demo import tinyimage
from tests.integration.agent_harness import ROOT, Device
from tests.support.net import free_port, wait_for

GOOD = json.dumps(tinyimage.SERVE)  # a YAML flow sequence for `command:`
CRASH = '["sh", "-c", "sleep 0.3; exit 4"]'


def stack(image: str, command: str) -> str:
    return f"""\
services:
  web:
    image: {image}
    command: {command}
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      retries: 3
"""



class Hook:
    """A real HTTP receiver for the webhook."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""



def test_daemon_endpoints_metrics_webhook_and_json_logs(
    device: Device, stack_name: str, test_images: dict[str, str], tmp_path: Path
) -> None:
    s = stack_name
    device.cleanup.append(s)  # type: ignore[attr-defined]
    port = free_port()
    hook = Hook()
    device.status_listen = f"127.0.0.1:{port}"
    device.extra_config = f"notify: {{webhook: '{hook.url}', timeout: 5s}}\n"
    device.health = "{timeout: 30s, stable_for: 1s}"
    device.commit({"README.md": "d\n", f"{s}/compose.yaml": stack(test_images["v1"], GOOD)})
    device.interval = "2s"
    config = str(device.config)
    log_file = tmp_path / "agent.log"
    with log_file.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitops_edge", "--config", config,
             "--log-format", "json", "run"],
            cwd=ROOT, stdout=log, stderr=log, env=dict(os.environ),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/healthz")[0] == 200, 20, "/healthz")
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, 60, "/readyz after the first sync")
        status = json.loads(get(f"{base}/status")[1])
        [entry] = [x for x in status["stacks"] if x["stack"] == s]
        assert [svc["health"] for svc in entry["services"]] == ["healthy"]
        assert status["trust"].startswith("no trust policy")

        metrics = get(f"{base}/metrics")[1].decode()
        assert 'gitops_edge_sync_duration_seconds_count{outcome="applied"} 1.0' in metrics
        assert 'gitops_edge_applied_revision_info{revision="' in metrics and f'stack="{s}"' in metrics
        assert "gitops_edge_source_reachable 1.0" in metrics

        # a crashing release: rolled back, one webhook message, not repeated on later polls
        device.commit({f"{s}/compose.yaml": stack(test_images["v2"], CRASH)}, "bad")
        wait_for(lambda: any(m["event"] == "rollback" for m in hook.received), 60, "the rollback webhook")
        time.sleep(5)  # two more polls of the same (quarantined) commit
        rollbacks = [m for m in hook.received if m["event"] == "rollback"]
        assert len(rollbacks) == 1, hook.received
        assert rollbacks[0]["device"] == "test-device" and "web" in rollbacks[0]["reason"]
        metrics = get(f"{base}/metrics")[1].decode()
        assert "gitops_edge_rollbacks_total 1.0" in metrics

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
        hook.server.shutdown()
    lines = [ln for ln in log_file.read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line is a JSON object
    assert any(r["msg"].startswith("sync applied") for r in records)
    assert {"ts", "level", "logger", "msg"} <= set(records[0])
