"""A fleet at scale: N simulated devices polling one Git server and reporting to one Mosquitto.

What is real: one bare fleet repository (``fleet.yaml`` + a 20-service stack,
20 commits) served by the real ``git http-backend`` over HTTP on 127.0.0.1
(``tests.support.git_servers``, in its own process, behind the counting TCP
proxy of ``bench.git_poll``: every byte on the wire, HTTP headers included);
a real Mosquitto broker. Each of N devices is the agent's own daemon object
(``gitops_edge.daemon.loop.Agent``) with its own config file (distinct ``device.id``
and labels, loaded by the real config loader), its own state dir and Git
cache, its own APScheduler (first poll by ``first_delay``, then
``next_delay``: interval + jitter) and its own ``FleetReporter`` (its own
paho connection, retained status + online flag after every sync). A sync is
the real ``Agent._sync_once``: the real ``GitRepoSource`` (``ls-remote``
first, fetch only when the ref moved), the real fleet.yaml targeting, state
store, plan and reporting.

What is simulated: the devices run as threads of ``--procs`` worker processes
(``--worker``, 100 devices each by default: ``DEVICES_PER_PROCESS`` says why), not
N processes, and the container engine is a stub that reports no containers
(``DockerRuntime`` is replaced in the workers only). fleet.yaml selects no
stack for the simulated devices, so every plan is empty and nothing is ever
applied; a device's cost is its Git polling and its MQTT reporting, which
is what a fleet puts on the server and the broker. Times from every worker
are CLOCK_MONOTONIC, the same clock in every process of the machine.

Phases: warm-up (every device has synced once: its first clone), a quiet
window (server requests and bytes per poll and per device, broker messages),
a push of one commit (time until 50/90/100 % of the devices have checked it
out; the retained statuses of devices without stacks do not name a commit), then the real
``gitops-edge fleet status --json`` process, which must list all N devices.
Last, the measured costs are put into a model of 10,000 devices polling
every 60 s (jitter 10 s), printed with its formulas (docs/benchmarks.md, "Fleet").

With ``--push`` the devices also subscribe to the ref's push-hint topic (``mqtt.push``,
``FleetReporter(on_hint=Agent.hint)``) and the push is followed by the real
``gitops-edge fleet notify --repo`` process; the first polls are then spread over
``--warmup`` instead of the (long) interval, and the report puts the measured
push-triggered convergence next to polling-only figures for the same devices
(the model above, fed this run's measured sync and poll times; validated against
measured polling in the default mode) and models 100,000 devices. After the clones,
every device's next poll is moved to where it would be in a fleet polling for hours
(the forward recurrence time of interval + jitter), so the quiet window measures the
steady Git load of hourly polling. ``--flood K`` then publishes K forged hints
(commit ids nobody has) and counts the polls and Git requests they cause.

Usage: ``.venv/bin/python -m bench.fleet [--agents 200] [--interval 10s] [--jitter 2s] [--quiet 30s]``;
push: ``--push --agents 1000 --interval 1h --warmup 240s --hint-spread 90s --quiet 150s --retained-total 0
--flood 20``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import summary
from bench.rollback import ROOT, check, git_commit, git_init, run
from bench.stack20 import stack_yaml

PREFIX = "gitops-edge"
MODEL_DEVICES = 10_000
MODEL_INTERVAL_S = 60.0
MODEL_JITTER_S = 10.0
# paho's network loop uses select(), which cannot watch a file descriptor above 1023; a simulated
# device holds ~5.5 (its MQTT socket and wake-up socket pair, its SQLite files), so a process holding
# 200 of them had clients that opened a TCP connection and dropped it before CONNECT, again and again
# (the failed 1,000-device run of one process: 663 never connected). 100 per process stay near 560.
DEVICES_PER_PROCESS = 100


# -- the Git server, in its own process ------------------------------------------------------


def serve_git(project_root: Path) -> int:
    """``--serve-git``: the HTTP Git server behind a counting proxy; ``stats`` on stdin -> JSON."""
    sys.path.insert(0, str(ROOT))
    from bench.git_poll import CountingProxy
    from tests.support.git_servers import GitHttpServer

    server = GitHttpServer(project_root, None)
    lock = threading.Lock()
    requests = {"GET": 0, "POST": 0}
    base = server._server.RequestHandlerClass

    class Counting(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            with lock:
                requests["GET"] += 1
            super().do_GET()

        def do_POST(self) -> None:
            with lock:
                requests["POST"] += 1
            super().do_POST()

    server._server.RequestHandlerClass = Counting
    server._server.socket.listen(1024)  # socketserver's backlog of 5 resets a fleet that arrives at once
    server.start()
    proxy = CountingProxy(("127.0.0.1", server.port))
    print(proxy.port, flush=True)
    for line in sys.stdin:
        if line.strip() != "stats":
            continue
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        with lock:
            kinds = {k: server.commands.count(k) for k in ("info/refs", "ls-refs", "fetch")}
            out = {"requests": sum(requests.values()), **kinds, "down": proxy.down, "up": proxy.up,
                   "connections": proxy.connections, "cpu_server": me.ru_utime + me.ru_stime,
                   "cpu_backend": kids.ru_utime + kids.ru_stime}  # fmt: skip
        print(json.dumps(out), flush=True)
    proxy.close()
    server.stop()
    return 0


class GitServer:
    def __init__(self, project_root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fleet", "--serve-git", str(project_root)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/fleet.git"

    def stats(self) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after}


# -- the broker, watched from outside ----------------------------------------------------------


class BrokerWatch:
    """Subscribes to every device topic and to ``$SYS``: counts what the devices publish."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.lock = threading.Lock()
        self.count: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.sys: dict[str, str] = {}
        self.status_size: dict[str, int] = {}  # device -> size of its last status payload
        self.revision_seen: dict[str, dict[str, float]] = {}  # revision -> device -> first seen
        self.sample = b""  # one device's retained status, as published
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-watch")
        self.client.on_connect = lambda c, *_a: c.subscribe([(f"{PREFIX}/#", 0), ("$SYS/broker/#", 0)])
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("the bench's own MQTT subscriber did not get through")

    def _message(self, _c: Any, _ud: Any, msg: Any) -> None:
        now = time.monotonic()
        topic, payload = str(msg.topic), bytes(msg.payload)
        with self.lock:
            if topic.startswith("$SYS/"):
                self.sys[topic] = payload.decode("utf-8", "replace")
                return
            device, _, leaf = topic[len(PREFIX) + 1 :].partition("/")
            self.count[leaf] = self.count.get(leaf, 0) + 1
            self.bytes[leaf] = self.bytes.get(leaf, 0) + len(payload) + len(topic)
            if leaf == "status" and payload:
                self.status_size[device] = len(payload)
                self.sample = payload
                rev = ((json.loads(payload).get("last_sync") or {}).get("revision")) or ""
                self.revision_seen.setdefault(rev, {}).setdefault(device, now)

    def snapshot(self) -> dict[str, float]:
        with self.lock:
            out: dict[str, float] = {f"n_{k}": float(v) for k, v in self.count.items()}
            out.update({f"b_{k}": float(v) for k, v in self.bytes.items()})
            return out

    def sys_value(self, name: str) -> str:
        with self.lock:
            return self.sys.get(f"$SYS/broker/{name}", "")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained_snapshot(port: int, expect: int) -> float:
    """Seconds from subscribing until a fresh client holds ``expect`` retained device messages."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got = threading.Semaphore(0)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-snapshot")
    client.on_message = lambda *_a: got.release()
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("snapshot client did not connect")
        began = time.monotonic()
        client.subscribe([(f"{PREFIX}/+/status", 1), (f"{PREFIX}/+/online", 1)])
        for _ in range(expect):
            if not got.acquire(timeout=30):
                raise RuntimeError("retained messages stopped arriving")
        return time.monotonic() - began
    finally:
        client.disconnect()
        client.loop_stop()


def fill_retained(port: int, sample: bytes, first: int, total: int) -> None:
    """Retained status + online for devices ``first``..``total``-1: copies of a real device's status."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    doc = json.loads(sample)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-fill")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        last = None
        for i in range(first, total):
            doc["device"] = f"syn-{i:05d}"
            client.publish(f"{PREFIX}/syn-{i:05d}/online", b"true", qos=1, retain=True)
            last = client.publish(f"{PREFIX}/syn-{i:05d}/status", json.dumps(doc, sort_keys=True).encode(),
                                  qos=1, retain=True)  # fmt: skip
            if i % 500 == 0:
                last.wait_for_publish(30)
        if last is not None:
            last.wait_for_publish(60)
    finally:
        client.disconnect()
        client.loop_stop()


def fleet_status(url: str, wait: str) -> tuple[float, list[dict[str, Any]]]:
    began = time.monotonic()
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "gitops-edge"), "fleet", "status", "--broker", url, "--json", "--wait", wait],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    took = time.monotonic() - began
    check(out, "gitops-edge fleet status")
    return took, list(json.loads(out.stdout))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- the simulated devices ---------------------------------------------------------------------


class NoEngine:
    """The container engine of a simulated device: no containers, nothing may be changed."""

    def __init__(self, *_a: object, **_k: object) -> None:
        pass

    def observe(self) -> Any:
        from gitops_edge.model.observed import ObservedState

        return ObservedState()

    def fingerprint(self, stacks: object) -> str:  # the idle poll's one cheap engine call
        return "no-containers"

    def platform(self) -> str:
        return "linux/amd64"

    def observe_containers(self) -> Any:
        return self.observe()

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a simulated device has no engine: {name} called (fleet.yaml selected a stack?)")


class Polls:
    """Wraps ``GitRepoSource.checkout``, ``Agent._sync_once`` and ``Agent.hint`` in one worker process:
    when each device polled, what it got, how long, and when it heard a hint."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.durations: list[float] = []  # of each checkout
        self.syncs: list[float] = []  # of each whole sync (Agent._sync_once, reporting included)
        self.starts: dict[str, list[float]] = {}  # device -> sync start times
        self.got: dict[str, dict[str, float]] = {}  # revision -> device -> first checkout done
        self.hints: dict[str, list[tuple[float, str]]] = {}  # device -> (when, revision) of each hint heard
        self.errors = 0

    def install(self) -> None:
        from gitops_edge.adapters.git.source import GitRepoSource

        original = GitRepoSource.checkout
        polls = self

        def checkout(source: GitRepoSource, applied_revision: str | None = None, revision: str | None = None) -> Any:
            started = time.monotonic()
            try:
                out = original(source, applied_revision, revision)
            except Exception:
                with polls.lock:
                    polls.errors += 1
                raise
            done = time.monotonic()
            key = Path(str(source._cache_dir)).parent.parent.name  # devices/<id>/state/<cache>
            with polls.lock:
                polls.count += 1
                polls.durations.append(done - started)
                polls.got.setdefault(out.revision, {}).setdefault(key, done)
            return out

        GitRepoSource.checkout = checkout  # type: ignore[method-assign]

        from gitops_edge.daemon.loop import Agent

        original_sync, original_hint = Agent._sync_once, Agent.hint

        def sync_once(agent: Agent) -> None:
            started = time.monotonic()
            try:
                original_sync(agent)
            finally:
                with polls.lock:
                    polls.syncs.append(time.monotonic() - started)
                    polls.starts.setdefault(agent.config.device.id, []).append(started)

        def hint(agent: Agent, revision: str | None, origin: str) -> None:
            with polls.lock:
                polls.hints.setdefault(agent.config.device.id, []).append((time.monotonic(), revision or ""))
            original_hint(agent, revision, origin)

        Agent._sync_once = sync_once  # type: ignore[method-assign]
        Agent.hint = hint  # type: ignore[method-assign]

    def devices_with(self, revision: str) -> int:
        with self.lock:
            return len(self.got.get(revision, {}))

    def dump(self) -> dict[str, Any]:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        with self.lock:
            return {"count": self.count, "errors": self.errors, "durations": list(self.durations),
                    "syncs": list(self.syncs), "starts": {k: list(v) for k, v in self.starts.items()},
                    "got": {k: dict(v) for k, v in self.got.items()},
                    "hints": {k: list(v) for k, v in self.hints.items()},
                    "cpu_py": me.ru_utime + me.ru_stime, "cpu_git": kids.ru_utime + kids.ru_stime}  # fmt: skip


def merge_dumps(dumps: list[dict[str, Any]]) -> dict[str, Any]:
    """One view of every worker's ``Polls.dump`` (CLOCK_MONOTONIC is the same in every process)."""
    out: dict[str, Any] = {"count": 0, "errors": 0, "durations": [], "syncs": [], "starts": {}, "got": {},
                           "hints": {}, "cpu_py": 0.0, "cpu_git": 0.0}  # fmt: skip
    for d in dumps:
        for k in ("count", "errors", "cpu_py", "cpu_git"):
            out[k] += d[k]
        out["durations"] += d["durations"]
        out["syncs"] += d["syncs"]
        out["starts"].update(d["starts"])
        out["hints"].update(d["hints"])
        for rev, devs in d["got"].items():
            out["got"].setdefault(rev, {}).update(devs)
    return out


def steady_phase(interval: float, jitter: float, rng: random.Random) -> float:
    """Seconds to a device's next poll in a fleet long in its steady state: the forward recurrence
    time of T = I + U(0, J), density P(T > t) / E[T] (sampled by rejection)."""
    while True:
        t = rng.uniform(0, interval + jitter)
        if t <= interval or jitter <= 0 or rng.random() < 1 - (t - interval) / jitter:
            return t


def worker(root: Path, first: int, count: int, push: bool) -> int:
    """``--worker``: devices ``first``..``first + count - 1`` of the run in ``root`` as agents of this
    process, each with its own paho client; one command per line on stdin, one JSON line back."""
    sys.path.insert(0, str(ROOT))
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # nothing the agents print can garble the replies
    sys.stdout = sys.stderr
    import gitops_edge.adapters.docker.runtime as docker_runtime
    from gitops_edge.adapters.files.config_file import load_config
    from gitops_edge.daemon.loop import Agent
    from gitops_edge.wiring import Wiring

    docker_runtime.DockerRuntime = NoEngine  # type: ignore[misc, assignment]
    polls = Polls()
    polls.install()
    agents: list[Agent] = []
    for i in range(first, first + count):
        wiring = Wiring(load_config(root / "devices" / f"sim-{i:05d}" / "config.yaml"))
        wiring._runtime = NoEngine()  # type: ignore[assignment]
        agents.append(Agent(wiring.config, wiring))
    for agent in agents:
        agent.reporter = agent.wiring.fleet_reporter(on_hint=agent.hint if push else None)
        assert agent.reporter is not None
        agent.reporter.start()
        time.sleep(0.002)  # no connect storm
    print(json.dumps({"ready": len(agents)}), file=out)
    for line in sys.stdin:
        cmd, *rest = line.split()
        reply: Any = None
        if cmd == "connected":
            reply = sum(1 for a in agents if a.reporter is not None and a.reporter.link.connected)
        elif cmd == "go":  # first polls (the clones) spread over WARMUP seconds
            rng = random.Random(int(rest[0]))
            for agent in agents:
                agent.begin(rng.uniform(0, float(rest[1])))
            reply = "ok"
        elif cmd == "steady":  # every next poll where a long-running fleet would have it
            rng = random.Random(int(rest[0]))
            for agent in agents:
                agent._run_in(steady_phase(agent.config.source.interval_s, agent.config.source.jitter_s, rng))
            reply = "ok"
        elif cmd == "count":
            reply = polls.devices_with(rest[0])
        elif cmd == "dump":
            reply = polls.dump()
        elif cmd == "quit":
            break
        print(json.dumps(reply), file=out)
    for agent in agents:
        agent.stop_event.set()
        if agent.scheduler.running:
            agent.scheduler.shutdown(wait=False)
    for agent in agents:
        agent.idle.wait(30)
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda a: a.reporter.stop() if a.reporter is not None else None, agents))
    print(json.dumps("bye"), file=out)
    return 0


class Workers:
    """The simulated devices, split over ``procs`` processes (``--worker``): one Python process
    cannot hold more than ~180 of them (``DEVICES_PER_PROCESS``)."""

    def __init__(self, root: Path, n: int, procs: int, push: bool) -> None:
        procs = max(1, min(procs, n))
        bounds = [n * k // procs for k in range(procs + 1)]
        self.procs = []
        for a, b in itertools.pairwise(bounds):
            cmd = [sys.executable, "-m", "bench.fleet", "--worker", str(root), "--first", str(a),
                   "--agents", str(b - a)]
            self.procs.append(subprocess.Popen(cmd + (["--push"] if push else []), cwd=ROOT, stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, text=True))  # fmt: skip
        self.ready = sum(int(r["ready"]) for r in self._read())

    def _read(self) -> list[Any]:
        replies = []
        for p in self.procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"a fleet worker died (exit {p.wait()})")
            replies.append(json.loads(line))
        return replies

    def ask(self, cmd: str) -> list[Any]:
        """Send ``cmd`` to every worker at once, then gather their replies in order."""
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(cmd + "\n")
            p.stdin.flush()
        return self._read()

    def total(self, cmd: str) -> int:
        return sum(int(x) for x in self.ask(cmd))

    def dump(self) -> dict[str, Any]:
        return merge_dumps(self.ask("dump"))

    def stop(self) -> None:
        for p in self.procs:
            try:
                assert p.stdin is not None
                p.stdin.write("quit\n")
                p.stdin.close()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_repo(root: Path) -> Path:
    """A bare fleet repo: fleet.yaml whose stacks select none of the simulated devices."""
    check(run(["git", "init", "-q", "--bare", "-b", "main", str(root / "srv" / "fleet.git")], root), "init")
    work = root / "work"
    git_init(work)
    check(run(["git", "remote", "add", "origin", str(root / "srv" / "fleet.git")], work), "remote")
    fleet = "stacks:\n  web: {devices: {site: farm-*}}\n  sensor: {devices: {id: sensor-*}}\n"
    for i in range(20):
        git_commit(work, {"fleet.yaml": fleet, "stacks/web/compose.yaml": stack_yaml("v1" if i % 2 else "v2"),
                          "stacks/sensor/compose.yaml": stack_yaml("v1", 3)}, f"history {i}")  # fmt: skip
    check(run(["git", "push", "-q", "origin", "main"], work), "push")
    return work


def write_configs(
    root: Path, n: int, url: str, interval: float, jitter: float, broker_port: int, push: bool = False,
    hint_spread: float = 2.0, hint_min_gap: float = 10.0,
) -> list[Path]:
    paths = []
    for i in range(n):
        d = root / "devices" / f"sim-{i:05d}"
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(
            f"device: {{id: sim-{i:05d}, labels: {{site: lab-{i % 10}, ring: {'canary' if i % 20 == 0 else 'stable'}, "
            f"model: sim-{i % 3}}}}}\n"
            f"source: {{url: '{url}', ref: main, path: ., interval: {interval}s, jitter: {jitter}s, "
            f"hint_spread: {hint_spread}s, hint_min_gap: {hint_min_gap}s}}\n"
            f"state_dir: {d / 'state'}\n"
            f"mqtt: {{broker: 'mqtt://127.0.0.1:{broker_port}', push: {'true' if push else 'false'}}}\n"
        )
        paths.append(d / "config.yaml")
    return paths


# -- the model ---------------------------------------------------------------------------------


def convergence_time(q: float, interval: float, jitter: float, sync: float, latency: float) -> float:
    """Seconds after a push until a share ``q`` of the fleet has checked the commit out.

    Each device syncs every T = I' + U(0, J), I' = interval + sync (the next sync is
    scheduled when one ends). At a push, the wait for a device's next poll is the
    forward recurrence time of T, CDF F(t) = (1/E[T]) * integral_0^t P(T > s) ds:
    t/E[T] up to I', then (I' + v - v^2/2J)/E[T] with v = t - I'; the checkout
    lands ``latency`` after the poll starts.
    """
    interval += sync
    mean = interval + jitter / 2
    if q >= 1.0:
        return interval + jitter + latency
    if q * mean <= interval or jitter <= 0:
        return min(q * mean, interval + jitter) + latency
    rest = q * mean - interval
    v = jitter * (1 - math.sqrt(max(0.0, 1 - 2 * rest / jitter)))
    return interval + v + latency


# -- the run -----------------------------------------------------------------------------------


def pct(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def wait_until(what: str, cond: Any, timeout: float) -> float:
    started = time.monotonic()
    while not cond():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fleet(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.support.mosquitto import Mosquitto

    work = make_repo(root)
    server = GitServer(root / "srv")
    broker = Mosquitto(root / "mqtt", extra_conf="sys_interval 1\nmax_queued_messages 0\n")
    broker.start()
    assert broker.proc is not None
    watch = BrokerWatch(broker.port)
    workers: Workers | None = None
    n = args.agents
    procs = args.procs or max(1, math.ceil(n / DEVICES_PER_PROCESS))
    r: dict[str, Any] = {"n": n, "interval": args.interval, "jitter": args.jitter, "procs": procs,
                         "retained_total": args.retained_total, "push": args.push, "hint_spread": args.hint_spread,
                         "hint_min_gap": args.hint_min_gap}  # fmt: skip
    try:
        time.sleep(1.5)
        r["broker_rss_empty"] = rss_kib(broker.proc.pid)
        r["broker_retained_empty"] = watch.sys_value("retained messages/count")  # $SYS's own
        setup = time.monotonic()
        write_configs(root, n, server.url, args.interval, args.jitter, broker.port, push=args.push,
                      hint_spread=args.hint_spread, hint_min_gap=args.hint_min_gap)  # fmt: skip
        workers = Workers(root, n, procs, args.push)
        r["connect_s"] = wait_until("every device's MQTT connection", lambda: workers.total("connected") >= n, 300)
        progress(f"{workers.ready} agents in {procs} processes, all connected, {time.monotonic() - setup:.1f}s")
        warmup = args.warmup if args.push else args.interval
        progress(f"starting (first polls spread over {warmup:g}s)")
        started = time.monotonic()
        workers.ask(f"go 7 {warmup}")
        head = run(["git", "rev-parse", "HEAD"], work).stdout.strip()
        r["warmup_s"] = wait_until("every device's first sync", lambda: workers.total(f"count {head}") >= n,
                                   warmup * 3 + 600)  # fmt: skip
        progress(f"all {n} devices synced once after {r['warmup_s']:.1f}s; quiet window {args.quiet:g}s")
        d0 = workers.dump()
        if d0["errors"]:
            raise RuntimeError(f"{d0['errors']} polls failed during warm-up")
        if args.push:  # the clones were a bench artifact: put every next poll where an hour-old fleet has it
            workers.ask("steady 11")
            time.sleep(2)

        # -- quiet fleet
        s0, b0, d0 = server.stats(), watch.snapshot(), workers.dump()
        m0 = cpu_of(broker.proc.pid)
        q0 = time.monotonic()
        time.sleep(args.quiet)
        s1, b1, d1 = server.stats(), watch.snapshot(), workers.dump()
        r["quiet_s"] = time.monotonic() - q0
        r["quiet_server"] = delta(s1, s0)
        r["quiet_broker"] = delta(b1, b0)
        r["quiet_polls"] = len(d1["syncs"]) - len(d0["syncs"])  # an idle poll is one ls-remote, no checkout
        r["quiet_agent_cpu_py"] = d1["cpu_py"] - d0["cpu_py"]
        r["quiet_agent_cpu_git"] = d1["cpu_git"] - d0["cpu_git"]
        r["quiet_broker_cpu"] = cpu_of(broker.proc.pid) - m0
        r["poll_s"] = statistics.median(d1["durations"])
        r["sync_s"] = statistics.median(d1["syncs"])
        gaps = [b - a for starts in d1["starts"].values() for a, b in itertools.pairwise(starts[1:])]
        r["period_s"] = statistics.mean(gaps) if gaps else float("nan")
        r["load"] = os.getloadavg()[0]
        progress(f"quiet: {r['quiet_polls']} polls, {r['quiet_server']['requests']:.0f} requests, "
                 f"{r['quiet_server']['down'] / 1024:.0f} KiB down in {r['quiet_s']:.1f}s")  # fmt: skip

        # -- a push
        git_commit(work, {"stacks/web/compose.yaml": stack_yaml("v3")}, "bench: move web to v3")
        new = run(["git", "rev-parse", "HEAD"], work).stdout.strip()
        s2, d2, m2 = server.stats(), workers.dump(), cpu_of(broker.proc.pid)
        r["load_before_push"] = os.getloadavg()[0]
        pushed = time.monotonic()
        check(run(["git", "push", "-q", "origin", "main"], work), "push")
        if args.push:  # what the fleet repo's CI does after the push
            out = subprocess.run(
                [str(ROOT / ".venv" / "bin" / "gitops-edge"), "fleet", "notify", "--broker", broker.url,
                 "--ref", "main", "--repo", server.url], capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            check(out, "gitops-edge fleet notify")
            r["notify_s"] = time.monotonic() - pushed
        timeout = args.interval + args.jitter + 600
        r["renotified"] = 0
        if args.push:
            # A device whose hinted sync failed (the server overrun) waits for its interval: CI notifies again
            # (docs/fleet.md, "A failed hinted sync"); the devices that have the commit ignore it.
            errors0, last = d2["errors"], [pushed]

            def converged_or_renotify() -> bool:
                if workers.total(f"count {new}") >= n:
                    return True
                since = time.monotonic() - pushed
                if time.monotonic() - last[0] > args.renotify_every and workers.dump()["errors"] > errors0:
                    r["renotified"] += 1
                    last[0] = time.monotonic()
                    progress(f"{since:.0f}s after the push: polls failed, notifying again")
                    check(subprocess.run(
                        [str(ROOT / ".venv" / "bin" / "gitops-edge"), "fleet", "notify", "--broker", broker.url,
                         "--ref", "main", "--revision", new], capture_output=True, text=True, timeout=120,
                    ), "gitops-edge fleet notify (again)")  # fmt: skip
                return False

            wait_until("the whole fleet to check the new commit out", converged_or_renotify, timeout)
        else:
            wait_until("the whole fleet to check the new commit out", lambda: workers.total(f"count {new}") >= n,
                       timeout)  # fmt: skip
        d3 = workers.dump()
        r["push_errors"] = d3["errors"] - d2["errors"]
        r["converge"] = [t - pushed for t in d3["got"][new].values()]
        r["push_cpu"] = {"agent_py": d3["cpu_py"] - d2["cpu_py"], "agent_git": d3["cpu_git"] - d2["cpu_git"],
                         "broker": cpu_of(broker.proc.pid) - m2, "window": max(r["converge"])}  # fmt: skip
        r["push_hints"] = sum(1 for hs in d3["hints"].values() if any(t > pushed and rev == new for t, rev in hs))
        heard = [[t for t, rev in hs if t > pushed and rev == new] for hs in d3["hints"].values()]
        r["hint_heard"] = [min(ts) - pushed for ts in heard if ts]
        # when each device's first sync after the push began (the hint path alone)
        r["sync_started"] = [min(t for t in ts if t > pushed) - pushed
                             for ts in d3["starts"].values() if any(t > pushed for t in ts)]  # fmt: skip
        r["push_syncs"] = [x for x in d3["syncs"][len(d2["syncs"]):]]
        # The status names a commit only through a history row or a stack: these devices run no stack, and
        # a sync that changes nothing is not a row (issue 16), so their quiet status does not move.
        time.sleep(3)
        with watch.lock:
            r["converge_broker"] = [t - pushed for t in watch.revision_seen.get(new, {}).values()]
        r["push_server"] = delta(server.stats(), s2)
        r["push_cpu"]["server"] = r["push_server"]["cpu_server"]
        r["push_cpu"]["backend"] = r["push_server"]["cpu_backend"]
        progress(f"push: 100% checked out after {max(r['converge']):.1f}s, "
                 f"{len(r['converge_broker'])} retained statuses name it")  # fmt: skip

        if args.push and args.flood:
            r["flood"] = flood(args, broker.port, server, workers, new)

        # -- the operator's view
        r["snapshot_s"] = retained_snapshot(broker.port, 2 * n)
        r["fleet_status_s"], entries = fleet_status(broker.url, "2s")
        r["fleet_status_devices"] = len(entries)
        r["fleet_status_online"] = sum(1 for e in entries if e.get("online"))
        r["fleet_status_new"] = sum(
            1 for e in entries if ((e.get("status") or {}).get("last_sync") or {}).get("revision") == new
        )
        r["fleet_status_bytes"] = len(json.dumps(entries, indent=2, sort_keys=True))
        if r["fleet_status_devices"] != n:
            raise RuntimeError(f"fleet status listed {r['fleet_status_devices']} devices, not {n}")
        time.sleep(1.5)  # one $SYS period
        r["broker_rss"] = rss_kib(broker.proc.pid)
        r["broker_retained"] = watch.sys_value("retained messages/count")
        r["broker_heap"] = watch.sys_value("heap/current")
        r["broker_clients"] = watch.sys_value("clients/connected")
        r["broker_msgs_received"] = watch.sys_value("messages/received")
        r["broker_bytes_received"] = watch.sys_value("bytes/received")
        with watch.lock:
            r["status_size"] = statistics.median(watch.status_size.values())
        if args.retained_total > n:  # the broker side of the model, measured
            progress(f"filling the broker to {args.retained_total} devices' retained messages")
            fill_retained(broker.port, watch.sample, n, args.retained_total)
            time.sleep(1.5)
            r["big_rss"] = rss_kib(broker.proc.pid)
            for wait in ("2s", "10s"):
                took, entries = fleet_status(broker.url, wait)
                r[f"big_unlimited_{wait}"] = took, len(entries)
        end = workers.dump()
        r["total_polls"] = len(end["syncs"])
        r["poll_errors"] = end["errors"]
        r["elapsed_s"] = time.monotonic() - started
    finally:
        progress("stopping")
        if workers is not None:
            workers.stop()
        watch.stop()
        broker.stop()
        server.stop()
        progress("stopped")
    return r


def flood(args: argparse.Namespace, port: int, server: GitServer, workers: Workers, head: str) -> dict[str, Any]:
    """Forged hints: ``--flood`` retained messages naming commits nobody has, over ``--flood-for``
    seconds, then the true one again. Every device must answer with rate-limited polls only."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    progress(f"flood: {args.flood} forged hints over {args.flood_for:g}s")
    rng = random.Random(13)
    s0, d0 = server.stats(), workers.dump()
    began = time.monotonic()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-forger")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for _ in range(args.flood):
            forged = f"{rng.getrandbits(160):040x}"
            client.publish(f"{PREFIX}/refs/main", forged.encode(), qos=1, retain=True).wait_for_publish(10)
            time.sleep(args.flood_for / max(args.flood, 1))
        client.publish(f"{PREFIX}/refs/main", head.encode(), qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    # every poll the flood can cause is due by the end of the flood + one gap + one spread
    settle = args.hint_min_gap + args.hint_spread + 20
    bound = 1 + math.ceil(args.flood_for / args.hint_min_gap)

    def settled() -> bool:
        d = workers.dump()
        return len(d["syncs"]) - len(d0["syncs"]) >= args.agents and time.monotonic() - began > args.flood_for + settle

    wait_until("the flood's polls", settled, args.flood_for + settle + 900)
    time.sleep(5)
    d1, s1 = workers.dump(), server.stats()
    per_device = {dev: sum(1 for t in ts if t > began) for dev, ts in d1["starts"].items()}
    counts = [per_device.get(f"sim-{i:05d}", 0) for i in range(args.agents)]
    out = {"hints": args.flood, "seconds": args.flood_for, "bound": bound, "window": time.monotonic() - began,
           "polls": len(d1["syncs"]) - len(d0["syncs"]), "max_per_device": max(counts), "min_per_device": min(counts),
           "requests": s1["requests"] - s0["requests"], "fetches": s1["fetch"] - s0["fetch"],
           "heard": sum(len([1 for t, _rev in hs if t > began]) for hs in d1["hints"].values())}  # fmt: skip
    progress(f"flood: {out}")
    return out


# -- the report --------------------------------------------------------------------------------


def kib(n: float) -> str:
    return f"{n / 1024:.2f} KiB"


def rate(n: float) -> str:
    return f"{n / 1024:.1f} KiB/s" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB/s"


def report(r: dict[str, Any]) -> None:
    n, interval, jitter = r["n"], r["interval"], r["jitter"]
    qs, qb, polls, secs = r["quiet_server"], r["quiet_broker"], max(r["quiet_polls"], 1), r["quiet_s"]
    per_poll_req = qs["requests"] / polls
    per_poll_down, per_poll_up = qs["down"] / polls, qs["up"] / polls
    per_poll_cpu = qs["cpu_backend"] / polls
    per_poll_msgs = (qb.get("n_status", 0) + qb.get("n_online", 0)) / polls
    per_poll_mbytes = (qb.get("b_status", 0) + qb.get("b_online", 0)) / polls
    ps = r["push_server"]
    conv = r["converge"]
    sync, latency = r["sync_s"], r["poll_s"]
    mean_t = interval + jitter / 2 + sync
    print(f"| quiet fleet: {n} devices, interval {interval:g}s + jitter {jitter:g}s, {secs:.0f}s window | "
          "total | per device | per poll |")  # fmt: skip
    print("|---|---|---|---|")
    print(f"| polls (no-change `ls-remote`) | {polls / secs:.1f}/s | {polls / secs / n * 60:.2f}/min | 1 |")
    print(f"| HTTP requests at the Git server | {qs['requests'] / secs:.1f}/s | "
          f"{qs['requests'] / secs / n * 60:.2f}/min | {per_poll_req:.2f} |")  # fmt: skip
    print(f"| bytes server -> devices | {rate(qs['down'] / secs)} | {qs['down'] / secs / n:.1f} B/s | "
          f"{kib(per_poll_down)} |")  # fmt: skip
    print(f"| bytes devices -> server | {rate(qs['up'] / secs)} | {qs['up'] / secs / n:.1f} B/s | {kib(per_poll_up)} |")
    print(f"| fetches (should be 0) | {qs['fetch']:.0f} | | |")
    print(f"| `git http-backend` CPU | {qs['cpu_backend'] / secs * 100:.1f} % of a core | | "
          f"{per_poll_cpu * 1000:.1f} ms |")  # fmt: skip
    print(f"| test HTTP server's own CPU (Python, reference) | {qs['cpu_server'] / secs * 100:.1f} % of a core | | "
          f"{qs['cpu_server'] / polls * 1000:.1f} ms |")  # fmt: skip
    print(f"| device side CPU: git processes | {r['quiet_agent_cpu_git'] / secs * 100:.1f} % of a core | | "
          f"{r['quiet_agent_cpu_git'] / polls * 1000:.1f} ms |")  # fmt: skip
    print(f"| device side CPU: agent Python ({n} agents in {r['procs']} processes) | "
          f"{r['quiet_agent_cpu_py'] / secs * 100:.1f} % of a core | | "
          f"{r['quiet_agent_cpu_py'] / polls * 1000:.1f} ms |")  # fmt: skip
    print(f"| MQTT publishes to the broker (status + online) | {(per_poll_msgs * polls) / secs:.1f}/s | | "
          f"{per_poll_msgs:.2f} |")  # fmt: skip
    print(f"| MQTT payload + topic bytes | {rate(per_poll_mbytes * polls / secs)} | | {per_poll_mbytes:.0f} B |")
    print(f"| poll (the sync's `checkout`) / whole sync, median | | | {latency * 1000:.0f} ms / {sync * 1000:.0f} ms |")
    print(f"| mean time between a device's polls (model: interval + jitter/2 + sync) | | "
          f"{r['period_s']:.2f} s ({mean_t:.2f}) | |")  # fmt: skip
    print()
    print(f"| push of one commit, {n} devices | measured | model |")
    print("|---|---|---|")
    for q in (0.5, 0.9, 1.0):
        print(f"| {q:.0%} of the devices have checked it out | {pct(conv, q):.1f} s | "
              f"{convergence_time(q, interval, jitter, sync, latency):.1f} s |")  # fmt: skip
    if len(r["converge_broker"]) >= n:
        print(f"| 100% of the retained statuses at the broker show it | {max(r['converge_broker']):.1f} s | |")
    else:
        print(f"| retained statuses naming it (a device without stacks reports no commit) | "
              f"{len(r['converge_broker'])} of {n} | |")  # fmt: skip
    print(f"| fetches at the server during convergence | {ps['fetch']:.0f} | {n} |")
    print(f"| bytes server -> devices during convergence, per device | {kib(ps['down'] / n)} | |")
    print()
    if r.get("push"):
        push_table(r)
    print("| broker and `gitops-edge fleet status` | |")
    print("|---|---|")
    print(f"| `gitops-edge fleet status --json` (real process, `--wait 2s` default) | {r['fleet_status_s']:.2f} s, "
          f"{r['fleet_status_devices']} devices listed, {r['fleet_status_online']} online, "
          f"{r['fleet_status_new']} on the new commit, {kib(r['fleet_status_bytes'])} of JSON |")  # fmt: skip
    print(f"| a fresh subscriber receives all {2 * n} retained device messages | {r['snapshot_s'] * 1000:.0f} ms |")
    print(f"| retained messages (`$SYS`, its own ~50 included) | {r['broker_retained']} |")
    print(f"| clients connected (`$SYS`, devices + watcher) | {r['broker_clients']} |")
    print(f"| MQTT packets / bytes received since start (`$SYS`) | {r['broker_msgs_received']} / "
          f"{r['broker_bytes_received']} B |")  # fmt: skip
    print(f"| retained status payload, median | {r['status_size']:.0f} B |")
    heap = f", heap {int(r['broker_heap']) / 1024:.0f} KiB" if r["broker_heap"].isdigit() else ""
    print(f"| mosquitto RSS: empty / with {n} devices | {r['broker_rss_empty']} KiB / {r['broker_rss']} KiB{heap} "
          f"({(r['broker_rss'] - r['broker_rss_empty']) / n:.1f} KiB per device) |")  # fmt: skip
    for wait in ("2s", "10s"):
        if f"big_status_{wait}" in r:
            took, listed = r[f"big_status_{wait}"]
            print(f"| broker (Mosquitto defaults) filled to {r['retained_total']:,} devices (copies of a real status): "
                  f"`fleet status --json --wait {wait}` | {took:.2f} s, **{listed:,}** devices listed |")  # fmt: skip
    for wait in ("2s", "10s"):
        if f"big_unlimited_{wait}" in r:
            took, listed = r[f"big_unlimited_{wait}"]
            print(f"| the same, broker with `max_queued_messages 0`: `fleet status --json --wait {wait}` | "
                  f"{took:.2f} s, {listed:,} devices listed |")  # fmt: skip
    if "big_rss" in r:
        print(f"| mosquitto RSS with {r['retained_total']:,} devices' retained messages ({n} connected) | "
              f"{r['big_rss'] / 1024:.1f} MiB |")  # fmt: skip
    print(f"| whole run: polls, failed polls, load average (1 min) | {r['total_polls']}, {r['poll_errors']}, "
          f"{r['load']:.1f} |")  # fmt: skip
    print()
    if r.get("push"):  # the polling model below assumes a 60 s interval: push_table has this run's
        return

    # -- the model for 10k devices
    big, bi, bj = MODEL_DEVICES, MODEL_INTERVAL_S, MODEL_JITTER_S
    big_t = bi + bj / 2 + sync
    polls_s = big / big_t
    per_dev_bytes = r["status_size"] + 2 * len(f"{PREFIX}/sim-00000/status") + len("true")
    print(f"| model: {big:,} devices, interval {bi:g}s + jitter {bj:g}s (measured costs per poll) | value | formula |")
    print("|---|---|---|")
    print(f"| polls/s | {polls_s:.0f} | N / E[T], E[T] = I + J/2 + s = {big_t:.1f} s (s: a sync) |")
    print(f"| HTTP requests/s at the Git server | {polls_s * per_poll_req:.0f} | polls/s x {per_poll_req:.2f} |")
    print(f"| bandwidth server -> devices | {rate(polls_s * per_poll_down)} "
          f"({polls_s * per_poll_down * 8 / 1e6:.2f} Mbit/s) | polls/s x {kib(per_poll_down)} |")  # fmt: skip
    print(f"| bandwidth devices -> server | {rate(polls_s * per_poll_up)} | polls/s x {kib(per_poll_up)} |")
    print(f"| `git http-backend` CPU | {polls_s * per_poll_cpu:.2f} cores | polls/s x {per_poll_cpu * 1000:.1f} ms |")
    for q in (0.5, 0.9, 1.0):
        print(f"| {q:.0%} converged after a push | {convergence_time(q, bi, bj, sync, latency):.1f} s | "
              + ("q E[T] + d" if q * big_t <= bi + sync else "I + s + J + d" if q >= 1 else
                 "I' + J(1 - sqrt(1 - 2(q E[T] - I')/J)) + d, I' = I + s") + " |")  # fmt: skip
    print(f"| push: fetches, spread over I + J | {big:,} in {bi + bj:g} s, peak ~{polls_s:.0f}/s | N |")
    print(f"| push: bytes server -> devices | {ps['down'] / n * big / 1024 / 1024:.1f} MiB | "
          f"N x {kib(ps['down'] / n)} (measured per device) |")  # fmt: skip
    print(f"| broker: MQTT publishes/s | {polls_s * per_poll_msgs:.0f} | polls/s x {per_poll_msgs:.2f} |")
    print(f"| broker: retained messages | {2 * big:,} | 2 N (status + online) |")
    print(f"| broker: retained payload + topics | {per_dev_bytes * big / 1024 / 1024:.1f} MiB | "
          f"N x {per_dev_bytes:.0f} B |")  # fmt: skip
    print(f"| broker: RSS (connections + retained) | {(r['broker_rss'] - r['broker_rss_empty']) / n * big / 1024:.0f} "
          f"MiB | N x {(r['broker_rss'] - r['broker_rss_empty']) / n:.1f} KiB (measured) |")  # fmt: skip
    summary.add(f"fleet of {n}: server requests per device", f"{qs['requests'] / secs / n * 60:.2f}/min",
                "poll rate per device", f"{polls / secs / n * 60:.2f}/min", per_poll_req)  # fmt: skip
    summary.add(f"fleet of {n}: push{' + notify' if r.get('push') else ''} -> 90% / 100% checked out",
                f"{pct(conv, 0.9):.1f} s / {max(conv):.1f} s",
                "polling only (model)" if r.get("push") else "model",
                f"{convergence_time(0.9, interval, jitter, sync, latency):.1f} s / "
                f"{convergence_time(1.0, interval, jitter, sync, latency):.1f} s",
                max(conv) / convergence_time(1.0, interval, jitter, sync, latency))  # fmt: skip
    summary.add(f"`fleet status --json` lists all {n} devices", f"{r['fleet_status_s']:.2f} s", "its --wait", "2 s",
                r["fleet_status_s"] / 2, f"{n} devices", r["fleet_status_devices"] == n)  # fmt: skip


def push_table(r: dict[str, Any]) -> None:
    """Push-triggered (measured) next to polling only (the model with this run's sync and poll times)."""
    n, interval, jitter, spread = r["n"], r["interval"], r["jitter"], r["hint_spread"]
    conv, sync, latency = r["converge"], r["sync_s"], r["poll_s"]
    qs, secs, polls = r["quiet_server"], r["quiet_s"], r["quiet_polls"]
    mean_t = interval + jitter / 2 + sync
    per_poll_req = qs["requests"] / polls if polls else 2.0  # 2.0: measured in every earlier run
    print(f"| {n} devices, interval {interval:g}s + jitter {jitter:g}s | push + notify (measured) | "
          "polling only (model, this run's sync times) |")  # fmt: skip
    print("|---|---|---|")
    for q in (0.5, 0.9, 1.0):
        print(f"| {q:.0%} converged after the push | {pct(conv, q):.1f} s | "
              f"{convergence_time(q, interval, jitter, sync, latency):.0f} s |")  # fmt: skip
    heard, started = r["hint_heard"], r["sync_started"]
    print(f"| the hint reached the device (push + notify + MQTT), 50% / 90% / 100% | "
          f"{pct(heard, 0.5):.1f} s / {pct(heard, 0.9):.1f} s / {pct(heard, 1.0):.1f} s | - |")  # fmt: skip
    print(f"| its sync began (hint path: notify + spread + scheduling), 50% / 90% / 100% | "
          f"{pct(started, 0.5):.1f} s / {pct(started, 0.9):.1f} s / {pct(started, 1.0):.1f} s | - |")  # fmt: skip
    print(f"| devices that heard the hint | {r['push_hints']} of {n} | - |")
    print(f"| hinted syncs that failed (server overrun) / `fleet notify` repeated for them | {r['push_errors']} / "
          f"{r['renotified']} | - |")  # fmt: skip
    syncs = r["push_syncs"]
    if syncs:
        print(f"| their syncs (fetch + checkout + report), median / max | {statistics.median(syncs):.1f} s / "
              f"{max(syncs):.1f} s | quiet: {r['sync_s'] * 1000:.0f} ms |")  # fmt: skip
    c = r["push_cpu"]
    busy = c["agent_py"] + c["agent_git"] + c["broker"] + c["server"] + c["backend"]
    print(f"| CPU from the push to 100 %: agents' Python / their git / Git HTTP server / `http-backend` / Mosquitto "
          f"| {c['agent_py']:.0f} / {c['agent_git']:.0f} / {c['server']:.0f} / {c['backend']:.0f} / "
          f"{c['broker']:.1f} CPU-s = {busy:.0f} CPU-s in {c['window']:.0f} s ({busy / c['window']:.2f} cores; "
          f"{busy / n * 1000:.0f} ms per device) | - |")  # fmt: skip
    print(f"| load average (1 min) before the push | {r['load_before_push']:.1f} on {os.cpu_count()} cores | - |")
    print(f"| `fleet notify --repo` (process: ls-remote + publish), done after the push | {r['notify_s']:.2f} s | - |")
    print(f"| Git requests per device per hour, quiet ({secs:.0f} s window, {polls} polls) | "
          f"{qs['requests'] / secs / n * 3600:.2f} | {3600 / mean_t * per_poll_req:.2f} |")  # fmt: skip
    print(f"| status messages per device per hour, quiet | {r['quiet_broker'].get('n_status', 0) / secs / n * 3600:.2f}"
          " | - |")  # fmt: skip
    print()
    big, fast_i, fast_j = 100_000, MODEL_INTERVAL_S, MODEL_JITTER_S
    fast_t = fast_i + fast_j / 2 + sync
    rollout = pct(conv, 1.0) - r["notify_s"]  # hint -> checked out, with this run's spread
    print(f"| model: {big:,} devices | push + poll every {interval:g}s | poll every {interval:g}s only | "
          f"poll every {fast_i:g}s + {fast_j:g}s only |")  # fmt: skip
    print("|---|---|---|---|")
    print(f"| Git requests/s, quiet | {big / mean_t * per_poll_req:.0f} | {big / mean_t * per_poll_req:.0f} | "
          f"{big / fast_t * per_poll_req:.0f} |")  # fmt: skip
    print(f"| fetches/s at the server after a push | {big / spread:,.0f} (N / hint_spread) | "
          f"{big / (interval + jitter):.0f} | {big / (fast_i + fast_j):.0f} |")  # fmt: skip
    for q in (0.5, 0.9, 1.0):
        print(f"| {q:.0%} converged | ~{r['notify_s'] + q * spread + latency:.0f} s at hint_spread {spread:g}s "
              f"(if the server keeps up) | {convergence_time(q, interval, jitter, sync, latency):.0f} s | "
              f"{convergence_time(q, fast_i, fast_j, sync, latency):.0f} s |")  # fmt: skip
    print(f"| measured here: hint to 100% checked out, {n} devices, hint_spread {spread:g}s | {rollout:.1f} s | | |")
    print()
    f = r.get("flood")
    if f:
        print(f"| forged hints: {f['hints']} retained messages naming unknown commits over {f['seconds']:g} s "
              f"(hint_spread {spread:g}s, hint_min_gap {r['hint_min_gap']:g}s) | measured |")  # fmt: skip
        print("|---|---|")
        print(f"| hints heard by the devices | {f['heard']} |")
        print(f"| polls they caused, whole fleet ({f['window']:.0f} s window) | {f['polls']} "
              f"({f['polls'] / n:.2f} per device) |")  # fmt: skip
        print(f"| polls per device, min / max (bound: 1 + flood / hint_min_gap = {f['bound']}) | "
              f"{f['min_per_device']} / {f['max_per_device']} |")  # fmt: skip
        print(f"| Git requests / fetches at the server | {f['requests']:.0f} / {f['fetches']:.0f} |")
        print()
    summary.add(f"fleet of {n}, push + notify, poll every {interval:g}s: 90% / 100% converged",
                f"{pct(conv, 0.9):.1f} s / {pct(conv, 1.0):.1f} s", "polling only (model)",
                f"{convergence_time(0.9, interval, jitter, sync, latency):.0f} s / "
                f"{convergence_time(1.0, interval, jitter, sync, latency):.0f} s",
                pct(conv, 1.0) / convergence_time(1.0, interval, jitter, sync, latency))  # fmt: skip


def seconds(text: str) -> float:
    from gitops_edge.core.config import parse_duration

    return float(parse_duration(text))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.fleet", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--agents", type=int, default=200, help="simulated devices (default 200)")
    p.add_argument("--interval", type=seconds, default=30.0,
                   help="poll interval (default 30s: at 10s, 200 agents saturate this 2-core machine)")
    p.add_argument("--jitter", type=seconds, default=None, help="poll jitter (default interval/6, as 60s/10s)")
    p.add_argument("--quiet", type=seconds, default=30.0, help="quiet-fleet window (default 30s)")
    p.add_argument("--retained-total", type=int, default=MODEL_DEVICES,
                   help="at the end, fill the broker with copies of a real status up to this many devices (default "
                   f"{MODEL_DEVICES}) and run `fleet status` against it")
    p.add_argument("--push", action="store_true", help="devices take push hints; the push is followed by fleet notify")
    p.add_argument("--warmup", type=seconds, default=120.0, help="--push: first polls spread over this (default 120s)")
    p.add_argument("--hint-spread", type=seconds, default=2.0, help="source.hint_spread of the devices (default 2s)")
    p.add_argument("--hint-min-gap", type=seconds, default=10.0, help="source.hint_min_gap (default 10s)")
    p.add_argument("--renotify-every", type=seconds, default=60.0,
                   help="--push: while polls failed and devices lack the commit, notify again this often (60s)")
    p.add_argument("--procs", type=int, default=0,
                   help=f"worker processes holding the devices (default: one per {DEVICES_PER_PROCESS} devices)")
    p.add_argument("--flood", type=int, default=0,
                   help="--push: after the rollout, publish this many forged hints and count the polls they cause")
    p.add_argument("--flood-for", type=seconds, default=3.0, help="--flood: over this long (default 3s)")
    p.add_argument("--reps", type=int, help=argparse.SUPPRESS)  # bench/run passes it to every benchmark
    p.add_argument("--serve-git", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_git is not None:
        return serve_git(args.serve_git)
    if args.worker is not None:
        import logging

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        return worker(args.worker, args.first, args.agents, args.push)
    if args.jitter is None:
        args.jitter = round(args.interval / 6, 2)
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="gebench-fleet-") as tmp:
        r = fleet(args, Path(tmp))
    report(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
