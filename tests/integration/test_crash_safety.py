"""Issue 3 item 6: a real agent process killed at every step of an update recovers.

Every ``crash_point(...)`` in ``gitops_edge/engine/switch.py`` is hit by a real
``python -m gitops_edge sync`` that dies there by SIGKILL; the next plain
``sync`` must leave exactly the target stack running (DESIGN.md §7: never two
containers per service, never an orphan, an empty journal). Also: a kill
during the health gate, a registry that dies while images are staged, and a
dockerd restart in the middle of an update.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from gitops_edge.engine.faults import ENV as CRASH_ENV
from gitops_edge.model.observed import KEPT_SUFFIX
from tests.integration.agent_harness import ROOT, Device, assert_clean_failure
from tests.support.cleanup import remove_project
from tests.support.images import build_image, push
from tests.support.net import free_port

SWITCH_SRC = ROOT / "gitops_edge" / "engine" / "switch.py"
CRASH_POINTS = re.findall(r'crash_point\("([a-z-]+)"\)', SWITCH_SRC.read_text())
HEALTH = "{timeout: 30s, stable_for: 1s}"

HTTPD = '["httpd", "-f", "-p", "8080", "-h", "/www"]'
WGET = '["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]'
FAILING_PROBE = '["CMD", "sh", "-c", "exit 1"]'
# healthy only ~3 s after start: the gate is still waiting when the test strikes
SLOW_HTTPD = '["sh", "-c", "(sleep 3; touch /tmp/ready) & exec httpd -f -p 8080 -h /www"]'
SLOW_PROBE = '["CMD", "sh", "-c", "test -f /tmp/ready && wget -q -O /dev/null http://127.0.0.1:8080/"]'


def stack(image: str, *, command: str = HTTPD, probe: str = WGET, retries: int = 3) -> str:
    """Two services: ``web`` (healthcheck) depends on ``db`` (none), two dependency waves."""
    return f"""\
services:
  db:
    image: {image}
    command: ["sh", "-c", "while true; do sleep 1; done"]
    restart: unless-stopped
    stop_grace_period: 1s
  web:
    image: {image}
    command: {command}
    restart: unless-stopped
    stop_grace_period: 1s
    depends_on: [db]
    healthcheck:
      test: {probe}
      interval: 1s
      timeout: 2s
      retries: {retries}
"""


def journal(dev: Device) -> dict[str, tuple[str, str]]:
    db = sqlite3.connect(dev.workdir / "state" / "state.db", timeout=30)
    try:
        return {s: (r, p) for s, r, p in db.execute("SELECT stack, revision, phase FROM journal")}
    finally:
        db.close()


def deploy_v1(dev: Device, s: str, image: str) -> str:
    dev.cleanup.append(s)  # type: ignore[attr-defined]
    dev.health = HEALTH
    rev = dev.commit({"README.md": "d1\n", f"{s}/compose.yaml": stack(image)}, "v1")
    out = dev.cli("sync")
    assert out.returncode == 0, out.stderr
    return rev


def assert_converged(dev: Device, s: str, rev: str, image_id: str, context: str = "") -> None:
    """Exactly the stack at ``rev``: one container per service, running, healthy, nothing kept."""
    cs = dev.containers(s)
    assert set(cs) == {f"{s}-db-1", f"{s}-web-1"}, f"containers of {s}: {sorted(cs)}{context}"
    assert not any(n.endswith(KEPT_SUFFIX) for n in cs)
    for name, c in cs.items():
        c.reload()
        assert c.status == "running", f"{name}: {c.status}{context}"
        assert c.labels["io.gitops-edge.revision"] == rev, f"{name}{context}"
        assert c.image.id == image_id, f"{name}{context}"
        assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", name
    web = cs[f"{s}-web-1"]
    assert web.attrs["State"]["Health"]["Status"] == "healthy", context
    nets = dev.client.networks.list(filters={"label": f"com.docker.compose.project={s}"})
    assert [n.name for n in nets] == [f"{s}_default"]
    [entry] = [x for x in dev.status()["stacks"] if x["stack"] == s]
    assert entry["revision"] == rev
    assert {x["revision"] for x in entry["services"]} == {rev}
    assert journal(dev) == {}


def stderr_of(out: subprocess.CompletedProcess[str]) -> str:
    return f"\nstdout:{out.stdout}\nstderr:{out.stderr}"


# -- every crash point of the switch ---------------------------------------------------------------
def test_every_crash_point_is_covered() -> None:
    assert set(CRASH_POINTS) >= {
        "before-stop", "after-stop", "after-rename", "after-create", "after-start",
        "committing", "after-commit-remove", "rollback-after-remove",
    }


@pytest.mark.parametrize("point", [p for p in CRASH_POINTS if p != "rollback-after-remove"])
def test_crash_at_point_then_sync_converges(point: str, device: Device, stack_name: str,
                                            test_images: dict[str, str]) -> None:
    s = stack_name
    deploy_v1(device, s, test_images["v1"])
    rev2 = device.commit({f"{s}/compose.yaml": stack(test_images["v2"])}, "v2")

    out = device.cli("sync", env={CRASH_ENV: point})
    assert out.returncode == -signal.SIGKILL, f"no crash at {point}: exit {out.returncode}" + stderr_of(out)
    assert journal(device), "the crash left no journal: it was not in the middle of a switch"

    out = device.cli("sync")
    assert out.returncode == 0, stderr_of(out)
    assert "Traceback" not in out.stderr
    assert_converged(device, s, rev2, device.client.images.get(test_images["v2"]).id, stderr_of(out))
    # and it stays: the next sync has nothing to do
    out = device.cli("sync")
    assert out.returncode == 0, stderr_of(out)
    assert "create" not in out.stdout and "recreate" not in out.stdout, out.stdout


def test_crash_while_repairing_drift_keeps_untouched_services(device: Device, stack_name: str,
                                                             test_images: dict[str, str]) -> None:
    """A switch at the *same* revision (a container vanished): a crash after the new one is
    created must undo only what this switch created, not the healthy db of that revision."""
    s = stack_name
    rev1 = deploy_v1(device, s, test_images["v1"])
    db_id = device.containers(s)[f"{s}-db-1"].id
    device.containers(s)[f"{s}-web-1"].remove(force=True)

    out = device.cli("sync", env={CRASH_ENV: "after-create"})
    assert out.returncode == -signal.SIGKILL, stderr_of(out)
    out = device.cli("sync")
    assert out.returncode == 0, stderr_of(out)
    assert device.containers(s)[f"{s}-db-1"].id == db_id
    assert_converged(device, s, rev1, device.client.images.get(test_images["v1"]).id, stderr_of(out))


def test_crash_during_rollback_restores_old_and_quarantines(device: Device, stack_name: str,
                                                            test_images: dict[str, str]) -> None:
    """A failing v2 is being rolled back when the agent dies. DESIGN §7 re-applies the target
    only when the failure was not the new version's fault; here it was (its health gate
    failed), so recovery finishes the rollback and quarantines v2 instead of trying it again."""
    s = stack_name
    rev1 = deploy_v1(device, s, test_images["v1"])
    v1_ids = {n: c.id for n, c in device.containers(s).items()}
    rev2 = device.commit({f"{s}/compose.yaml": stack(test_images["v2"], probe=FAILING_PROBE, retries=1)}, "bad")

    out = device.cli("sync", env={CRASH_ENV: "rollback-after-remove"})
    assert out.returncode == -signal.SIGKILL, stderr_of(out)
    assert journal(device)[s] == (rev2, "rolling-back")

    out = device.cli("sync")
    assert out.returncode == 0, stderr_of(out)
    assert "quarantined" in out.stdout, out.stdout
    # the very same v1 containers serve again
    assert {n: c.id for n, c in device.containers(s).items()} == v1_ids
    assert_converged(device, s, rev1, device.client.images.get(test_images["v1"]).id)
    [entry] = [x for x in device.status()["stacks"] if x["stack"] == s]
    assert entry["quarantined"]["revision"] == rev2
    assert "web" in entry["quarantined"]["reason"]


def test_kill_during_health_gate_recovers(device: Device, stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    deploy_v1(device, s, test_images["v1"])
    rev2 = device.commit(
        {f"{s}/compose.yaml": stack(test_images["v2"], command=SLOW_HTTPD, probe=SLOW_PROBE, retries=30)}, "slow v2"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitops_edge", "--config", str(device.config), "sync"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_gate(device, s, proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert journal(device)[s][1] == "switching"

    out = device.cli("sync")
    assert out.returncode == 0, stderr_of(out)
    assert_converged(device, s, rev2, device.client.images.get(test_images["v2"]).id, stderr_of(out))


def wait_for_gate(dev: Device, s: str, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Until the new web container exists and its healthcheck is still 'starting'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"sync ended (exit {proc.returncode}) before the gate was reached"
        web = dev.containers(s).get(f"{s}-web-1")
        if web is not None and web.status == "running" and \
                (web.attrs["State"].get("Health") or {}).get("Status") == "starting":
            return
        time.sleep(0.1)
    raise AssertionError("the new web container never reached the health gate")


# -- a registry that dies while images are staged ----------------------------------------------------

class Registry:
    """Our own ``docker-registry`` on a loopback port, so nobody else's registry is touched."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.config = root / "registry.yml"
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: 127.0.0.1:{self.port}}}\n"
        )
        self.log = root / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not _port_open(self.port):
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "registry did not listen"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class DyingProxy:
    """TCP proxy in front of a ``Registry`` that kills it when a manifest is fetched *by digest*.

    Resolving a tag (VERIFY) asks for ``/manifests/<tag>``; pulling the pinned image
    (STAGE) asks for ``/manifests/sha256:...``: the registry is gone exactly between them.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.armed = False
        self.killed = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            try:
                first = client.recv(65536)
                if self.armed and re.search(rb"^\S+ \S*/manifests/sha256:", first):
                    self.registry.stop()
                    self.killed.set()
                    return
                upstream = socket.create_connection(("127.0.0.1", self.registry.port), timeout=10)
            except OSError:
                return
            with upstream:
                upstream.sendall(first)
                back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
                back.start()
                _pipe(client, upstream)
                back.join(timeout=30)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[tuple[Registry, DyingProxy]]:
    reg = Registry(tmp_path / "registry")
    reg.start()
    proxy = DyingProxy(reg)
    try:
        yield reg, proxy
    finally:
        proxy.close()
        reg.stop()


def test_registry_dies_during_staging(device: Device, stack_name: str, test_images: dict[str, str],
                                      own_registry: tuple[Registry, DyingProxy]) -> None:
    reg, proxy = own_registry
    s = stack_name
    rev1 = deploy_v1(device, s, test_images["v1"])
    v1_ids = {n: c.id for n, c in device.containers(s).items()}

    # v2 exists only in our registry (unique content, never present locally at resolve time)
    repo = f"127.0.0.1:{proxy.port}/edge/{s}"
    image = f"{repo}:v2"
    image_id = build_image(device.client, repo, "v2", version=f"v2-{s}")
    push(device.client, image)
    device.client.images.remove(image)
    with pytest.raises(docker.errors.ImageNotFound):
        device.client.images.get(image)
    rev2 = device.commit({f"{s}/compose.yaml": stack(image)}, "v2 from our registry")

    proxy.armed = True
    out = device.cli("sync", timeout=120)
    assert proxy.killed.is_set(), "the registry was never asked for the pinned manifest" + stderr_of(out)
    assert_clean_failure(out, 4, image.rsplit(":", 1)[0])
    assert {n: c.id for n, c in device.containers(s).items()} == v1_ids
    for c in device.containers(s).values():
        assert c.status == "running"
    assert journal(device) == {}
    [entry] = [x for x in device.status()["stacks"] if x["stack"] == s]
    assert entry["revision"] == rev1 and entry["quarantined"] is None

    proxy.armed = False
    reg.start()
    out = device.cli("sync")
    assert out.returncode == 0, stderr_of(out)
    assert_converged(device, s, rev2, image_id, stderr_of(out))
    remove_project(device.client, s)  # then the image only our registry had
    device.client.images.remove(image_id, force=True)


# -- dockerd restarted in the middle of an update -----------------------------------------------------
BENCH_OUT = ROOT / ".bench-out"


def dockerd_pid() -> int:
    """The dockerd serving the default socket: not a private test engine (tests/support/small_engine.py,
    which passes its own ``--host``), and not whatever process reuses a stale pid file's number."""
    for pid in sorted(int(p) for p in subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True,
                                                     text=True).stdout.split()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(a in (b"-H", b"--host") or a.startswith(b"--host=") for a in argv):
            return pid
    raise AssertionError("no dockerd serves the default socket")


def restart_dockerd() -> None:
    """Stop the engine (SIGTERM, as a service manager would) and start it as scripts/test-bench does."""
    pid = dockerd_pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 90
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "dockerd did not stop within 90 s"
        time.sleep(0.2)
    BENCH_OUT.mkdir(exist_ok=True)
    with open(BENCH_OUT / "dockerd.log", "ab") as log:
        proc = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    (BENCH_OUT / "dockerd.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 120  # a loaded machine replays every container's restart policy slowly
    while not engine_answers():
        assert proc.poll() is None, "dockerd exited; see .bench-out/dockerd.log"
        assert time.monotonic() < deadline, "dockerd did not answer within 120 s"
        time.sleep(0.5)


def engine_answers() -> bool:
    """``docker info`` succeeds; a slow answer while dockerd starts counts as not yet."""
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_dockerd_restart_during_update(device: Device, stack_name: str, test_images: dict[str, str]) -> None:
    s = stack_name
    deploy_v1(device, s, test_images["v1"])
    rev2 = device.commit(
        {f"{s}/compose.yaml": stack(test_images["v2"], command=SLOW_HTTPD, probe=SLOW_PROBE, retries=30)}, "slow v2"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitops_edge", "--config", str(device.config), "sync"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_gate(device, s, proc)
        restart_dockerd()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the interrupted sync failed as "engine unavailable", not as a bad release
    assert proc.returncode == 4, f"exit {proc.returncode}\nstdout:{stdout}\nstderr:{stderr}"
    assert "Traceback" not in stderr
    st = device.status()
    [entry] = [x for x in st["stacks"] if x["stack"] == s]
    assert entry["quarantined"] is None and entry["automation_stopped"] is None, json.dumps(entry)

    out = device.cli("sync")
    assert out.returncode == 0, stderr_of(out)
    assert_converged(device, s, rev2, device.client.images.get(test_images["v2"]).id,
                     f"\ninterrupted sync:\n{stderr}{stderr_of(out)}")
