"""metrics.pushgateway: a real daemon pushes its metrics to a real Prometheus Pushgateway after each sync."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from gitops_edge.daemon.pushgateway import push_metrics
from tests.conftest import commit_files
from tests.integration.agent_harness import ROOT
from tests.support.net import free_port, wait_for
from tests.support.pushgateway import Pushgateway


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Pushgateway]:
    gw = Pushgateway(tmp_path / "pushgateway")
    try:
        gw.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield gw
    gw.stop()


def synced(text: str, device: str) -> int:
    """How many syncs the gateway holds for ``device`` (sum of the duration histogram's counts)."""
    pattern = r'gitops_edge_sync_duration_seconds_count\{([^}]*)\} (\S+)'
    return sum(int(float(v)) for labels, v in re.findall(pattern, text)
               if f'instance="{device}"' in labels and 'job="gitops-edge"' in labels)  # fmt: skip


def test_the_daemon_pushes_its_metrics_grouped_by_device(gateway: Pushgateway, git_repo: Path, tmp_path: Path) -> None:
    commit_files(git_repo, {"devices/pg/README": "no stacks: only the metrics are under test\n"})
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "device: {id: nat-box-7}\n"
        f"source: {{url: '{git_repo}', ref: main, path: devices/pg, interval: 1s, jitter: 0s, spread_start: false}}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        "status: {listen: ''}\n"
        f"metrics: {{pushgateway: '{gateway.url}', timeout: 5s}}\n"
    )
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gitops_edge", "--config", str(cfg), "run"], cwd=ROOT,
                                stdout=out, stderr=out)  # fmt: skip
    try:
        wait_for(lambda: synced(gateway.metrics(), "nat-box-7") >= 2, 60, "two syncs at the gateway")
        text = gateway.metrics()
        assert re.search(r'gitops_edge_source_reachable\{[^}]*instance="nat-box-7"[^}]*\} 1', text), text
        assert re.search(r'gitops_edge_last_sync_timestamp_seconds\{[^}]*instance="nat-box-7"', text)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "pushing metrics" not in log.read_text()  # no failure warnings
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_one_shot_sync_pushes_too_and_replaces_the_devices_group(
    gateway: Pushgateway, git_repo: Path, tmp_path: Path
) -> None:
    """No daemon (cron, a systemd timer): ``gitops-edge sync`` pushes after its sync, grouped as the
    daemon's pushes are; each push replaces the group, so two one-shot syncs leave one sync counted."""
    commit_files(git_repo, {"devices/pg/README": "no stacks: only the metrics are under test\n"})
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "device: {id: cron-box-3}\n"
        f"source: {{url: '{git_repo}', ref: main, path: devices/pg}}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        f"metrics: {{pushgateway: '{gateway.url}', timeout: 5s}}\n"
    )
    assert synced(gateway.metrics(), "cron-box-3") == 0
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "gitops_edge", "--config", str(cfg), "sync"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "pushing metrics" not in out.stderr  # no failure warning
        text = gateway.metrics()
        assert synced(text, "cron-box-3") == 1, text
        assert re.search(r'gitops_edge_source_reachable\{[^}]*instance="cron-box-3"[^}]*\} 1', text), text
        assert re.search(r'push_time_seconds\{[^}]*instance="cron-box-3"[^}]*job="gitops-edge"', text), text


def test_a_one_shot_sync_with_the_gateway_down_still_syncs(git_repo: Path, tmp_path: Path) -> None:
    commit_files(git_repo, {"devices/pg/README": "no stacks\n"})
    cfg = tmp_path / "agent.yaml"
    url = f"http://127.0.0.1:{free_port()}"
    cfg.write_text(
        "device: {id: cron-box-4}\n"
        f"source: {{url: '{git_repo}', ref: main, path: devices/pg}}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        f"metrics: {{pushgateway: '{url}', timeout: 2s}}\n"
    )
    out = subprocess.run([sys.executable, "-m", "gitops_edge", "--config", str(cfg), "sync"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"pushing metrics to {url} failed" in out.stderr


def test_an_unreachable_gateway_is_a_warning_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    Counter("gitops_edge_test_total", "a counter", registry=registry).inc()
    url = f"http://127.0.0.1:{free_port()}"
    assert push_metrics(registry, url, "dev", timeout_s=5) is False
    assert f"pushing metrics to {url} failed" in caplog.text
