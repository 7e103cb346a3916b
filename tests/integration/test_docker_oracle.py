"""DockerRuntime against the oracle: real Docker Compose v2 on the same file.

The same compose file is applied by ``docker compose -p A`` and by
``DockerRuntime`` (spec from the real loader) as project B; both containers
are inspected and compared field by field after normalizing what must
differ (project name, container ids).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from gitops_edge.adapters.docker.runtime import DockerRuntime
from gitops_edge.adapters.files.stack_files import load_stack, secret_lookup
from gitops_edge.errors import EngineError, EngineNotFoundError, ImageNotFoundError, RegistryError
from gitops_edge.model.config import DeviceConfig
from gitops_edge.model.spec import NetworkSpec, StackSpec, VolumeSpec
from tests.support.images import build_image, push

pytestmark = pytest.mark.docker

FULL = """
services:
  web:
    image: {v1}
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    environment:
      FOO: bar
      EMPTY: ""
    ports:
      - "127.0.0.1:18080:8080"
      - target: 8081
        published: "18081"
        host_ip: 127.0.0.1
        protocol: udp
      - "127.0.0.1:18090-18091:9090-9091"
      - "9999"
    volumes:
      - data:/data
      - ./bindsrc:/mnt/bind:ro
      - type: tmpfs
        target: /cache
        tmpfs:
          size: 1048576
    networks:
      front:
        aliases: [webby, www]
        link_local_ips: [169.254.8.8]
      back:
        priority: 5
        driver_opts: {{com.example.opt: "1"}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
      interval: 2s
      timeout: 3s
      retries: 4
      start_period: 5s
    restart: on-failure:3
    labels:
      com.example.team: edge
    user: "nobody"
    working_dir: /www
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    ulimits:
      nofile: {{soft: 1024, hard: 2048}}
      nproc: 512
    sysctls:
      net.core.somaxconn: "1024"
    extra_hosts:
      - "myhost:10.0.0.5"
      - "other=10.0.0.6"
    mem_limit: 64m
    cpus: 0.5
    stop_grace_period: 7s
    stop_signal: SIGINT
    logging:
      driver: json-file
      options: {{max-size: "1m", max-file: "2"}}
    init: true
    read_only: true
    hostname: webhost
    depends_on: [side]
    links: [web2, "web2:db"]
  side:
    image: {v2}
    entrypoint: ["/bin/sh", "-c"]
    command: ["exec httpd -f -p 8080 -h /www"]
    network_mode: "service:web2"
    healthcheck:
      disable: true
    depends_on: [web2]
  web2:
    image: {v2}
    restart: unless-stopped
    tty: true
    stdin_open: true
    privileged: true
    security_opt: ["no-new-privileges:true"]
networks:
  front: {{attachable: true}}
  back: {{}}
volumes:
  data: {{}}
"""

RUNNING = """
services:
  web:
    image: {v1}
    command: ["sh", "-c", "echo hello-from-the-app; exec httpd -f -p 8080 -h /www"]
    ports:
      - target: 8080
        host_ip: 127.0.0.1
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 5
    restart: always
  worker:
    image: {v2}
    command: ["sh", "-c", "echo worker-up; exec sleep 600"]
    init: true
    stop_grace_period: 2s
    depends_on:
      web:
        condition: service_healthy
"""


# Keys added for real-world files (issue 12): each must reach the container as Compose sends it.
SHARING = """
services:
  app:
    image: {v1}
    expose: ["80", 443, "8000-8001/udp"]
    shm_size: 1.5m
    tmpfs: ["/t1:mode=1770,size=1m", /t2]
    platform: linux/amd64
    runtime: runc
    ipc: service:holder
    pid: service:holder
    volumes_from: [holder, "container:{outside}"]
    external_links: ["{outside}", "{outside}:ext"]
    volumes:
      - ./bindsrc:/x/y/:z
      - ./bindsrc:/x/w:ro,Z
      - type: bind
        source: ./bindsrc
        target: /long//p/./q/
        bind: {{selinux: z}}
      - type: tmpfs
        target: /t3
        tmpfs: {{size: 1m, mode: 01777}}
      - ./bindsrc:/prop1:rslave
      - type: bind
        source: ./bindsrc
        target: /prop2
        bind: {{propagation: rprivate, create_host_path: true}}
    deploy:
      resources:
        limits: {{memory: 1.5G, cpus: "0.25", pids: 100}}
        reservations: {{memory: 10m}}
      restart_policy: {{condition: on-failure, max_attempts: 3}}
    networks:
      pool: {{}}
      pool6: {{ipv6_address: "fd00:213:{octet:x}::10"}}
  holder:
    image: {v2}
    ipc: shareable
    restart: always
    pids_limit: 50
    mem_reservation: 8m
    volumes:
      - devdata:/devdata
      - /tmp/:/hosttmp/
      - "scratch:/scratch:nocopy"
      - type: volume
        target: /anon
        volume: {{nocopy: true}}
volumes:
  scratch: {{}}
  devdata:
    driver: local
    driver_opts: {{device: ./bindsrc, o: bind, type: none}}
networks:
  pool:
    ipam:
      config:
        - subnet: 10.213.{octet}.0/24
          ip_range: 10.213.{octet}.128/25
          gateway: 10.213.{octet}.1
          aux_addresses: {{spare: 10.213.{octet}.2}}
  pool6:
    enable_ipv6: true
    ipam:
      config:
        - subnet: "fd00:213:{octet:x}::/64"
"""


# Kernel and resource settings (created, never started: some need hardware this host lacks).
TUNING = """
services:
  tuned:
    image: {v1}
    uts: host
    isolation: default
    userns_mode: host
    cgroup: private
    cgroup_parent: gitops-edge-test
    device_cgroup_rules: ["c 1:3 mr", "a 7:* rmw"]
    dns: 10.0.0.53
    dns_search: [example.com]
    dns_opt: [use-vc]
    domainname: foo.example
    mac_address: 02:42:ac:11:00:99
    group_add: [mail, 42]
    oom_score_adj: -500
    oom_kill_disable: true
    memswap_limit: -1
    mem_swappiness: 10
    cpu_shares: 512
    cpu_quota: 50000
    cpu_period: 100000
    cpuset: "0"
    cpu_rt_runtime: 400
    cpu_rt_period: 1400
    blkio_config:
      weight: 300
      device_read_bps: [{{path: /dev/null, rate: 12mb}}]
      device_write_iops: [{{path: /dev/null, rate: 30}}]
    annotations: {{com.example.a: b}}
    gpus:
      - driver: nvidia
        capabilities: [utility]
        device_ids: ["3"]
      - count: 2
    pull_policy: daily
    deploy:
      resources:
        reservations:
          devices:
            - capabilities: [gpu]
              count: all
  plain:
    image: {v2}
    memswap_limit: 1g
    mem_limit: 512m
    gpus: all
"""
_TUNING_KEYS = (
    "UTSMode", "UsernsMode", "CgroupnsMode", "CgroupParent", "DeviceCgroupRules", "Dns", "DnsSearch",
    "DnsOptions", "GroupAdd", "OomScoreAdj", "OomKillDisable", "MemorySwap", "MemorySwappiness", "CpuShares",
    "CpuQuota", "CpuPeriod", "CpusetCpus", "CpuRealtimeRuntime", "CpuRealtimePeriod", "BlkioWeight",
    "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps", "Annotations", "StorageOpt", "DeviceRequests", "Isolation",
)


FILES = """
services:
  app:
    image: {v1}
    configs:
      - plain
      - source: inline
        target: /etc/inline.conf
        mode: 0440
        uid: "1000"
      - source: fromenv
        target: relative.conf
    secrets:
      - pw
      - source: pw
        target: other
configs:
  plain:
    file: ./bindsrc/plain.txt
  inline:
    content: |
      key=${{TAG}}
  fromenv:
    environment: TAG
secrets:
  pw:
    file: ./bindsrc/pw.txt
"""


def compose(compose_bin: str, *args: str, cwd: Path, timeout: int = 120) -> str:
    out = subprocess.run([compose_bin, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"docker compose {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def creation_order(stack: StackSpec) -> list[str]:
    """Dependencies (depends_on, network_mode service:) before dependents."""
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        svc = stack.service(name)
        deps = [d.service for d in svc.depends_on]
        if svc.network_mode and svc.network_mode.startswith("service:"):
            deps.append(svc.network_mode.removeprefix("service:"))
        for d in deps:
            visit(d)
        done.append(name)

    for s in sorted(s.name for s in stack.services):
        visit(s)
    return done


def apply(rt: DockerRuntime, stack: StackSpec, *, start: bool) -> dict[str, str]:
    """What the reconciler's STAGE+SWITCH does for a fresh stack, minimal."""
    for net in stack.networks:
        rt.ensure_network(stack.name, net)
    for vol in stack.volumes:
        rt.ensure_volume(stack.name, vol)
    ids: dict[str, str] = {}
    for name in creation_order(stack):
        svc = stack.service(name)
        pinned = rt.resolve_image(svc.image, svc.pull_policy)
        rt.pull_image(pinned)
        ids[name] = rt.create_container(stack, svc, image=pinned, config_hash="hash-" + name, revision="rev0")
        if start:
            rt.start_container(ids[name])
    return ids


def project_of(tmp_path: Path, name: str, text: str) -> Path:
    """A checkout with one stack directory named after the project (= stack name)."""
    root = tmp_path / "repo"
    stack_dir = root / name
    (stack_dir / "bindsrc").mkdir(parents=True)
    (stack_dir / "compose.yaml").write_text(text)
    return root


_SHORT_ID = re.compile(r"^[0-9a-f]{12}$")
_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")  # an anonymous volume's random name


def normalize(c: dict[str, Any], projects: tuple[str, str], service_of: dict[str, str]) -> dict[str, Any]:
    """The parts of ``docker inspect`` that Compose derives from the file."""
    cfg, host = c["Config"], c["HostConfig"]
    labels = cfg.get("Labels") or {}
    def by_service(mode: str) -> str:
        if mode.startswith("container:"):
            return "container:" + service_of.get(mode.removeprefix("container:"), "?")
        return mode

    mode = by_service(host["NetworkMode"])
    hostname = cfg["Hostname"]
    out = {
        "Image": c["Image"],
        "Cmd": cfg["Cmd"],
        "Entrypoint": cfg["Entrypoint"],
        "Env": sorted(cfg["Env"] or []),
        "ExposedPorts": sorted(cfg.get("ExposedPorts") or {}),
        "PortBindings": host["PortBindings"] or {},
        "Mounts": sorted(
            (m["Type"], _ANONYMOUS.sub("<anonymous>", m.get("Name") or m["Source"]), m["Destination"], m["RW"])
            for m in c["Mounts"]
        ),
        "Binds": sorted(host["Binds"] or []),
        "HostMounts": sorted(json.dumps(m, sort_keys=True) for m in host.get("Mounts") or []),
        "Healthcheck": cfg.get("Healthcheck"),
        "RestartPolicy": {**host["RestartPolicy"], "Name": host["RestartPolicy"]["Name"] or "no"},
        "NetworkMode": mode,
        "Networks": {
            net: (sorted(a for a in (ep.get("Aliases") or []) if not _SHORT_ID.match(a)),
                  ep.get("IPAMConfig") or None, ep.get("DriverOpts") or None, ep.get("Links"))
            for net, ep in c["NetworkSettings"]["Networks"].items()
        },
        "UserLabels": {k: v for k, v in labels.items() if not k.startswith(("com.docker.compose.", "io.gitops-edge."))},
        "ComposeLabels": {
            k: labels.get(k)
            for k in (
                "com.docker.compose.project",
                "com.docker.compose.service",
                "com.docker.compose.container-number",
                "com.docker.compose.oneoff",
                "com.docker.compose.depends_on",
                "com.docker.compose.image",
            )
        },
        "Hostname": "<short id>" if hostname == c["Id"][:12] else hostname,
        "Name": c["Name"],
    }
    for key in ("User", "WorkingDir", "StopSignal", "StopTimeout", "Tty", "OpenStdin", "AttachStdin"):
        out[key] = cfg.get(key)
    for key in (
        "CapAdd", "CapDrop", "Sysctls", "ExtraHosts", "Memory", "NanoCpus", "LogConfig", "Init",
        "ReadonlyRootfs", "Privileged", "SecurityOpt", "Devices",
    ):
        out[key] = host.get(key)
    for key in ("ShmSize", "Runtime", "PidsLimit", "MemoryReservation", "Tmpfs", *_TUNING_KEYS):
        out[key] = host.get(key)
    out["Domainname"], out["MacAddress"] = cfg.get("Domainname"), cfg.get("MacAddress")
    out["IpcMode"], out["PidMode"] = by_service(host.get("IpcMode") or ""), by_service(host.get("PidMode") or "")
    out["VolumesFrom"] = [service_of.get(v, v) for v in host.get("VolumesFrom") or []]
    out["ExtraHosts"] = sorted(host.get("ExtraHosts") or [])  # Compose's own order varies run to run
    deps = out["ComposeLabels"]["com.docker.compose.depends_on"]  # so does this one's (a Go map)
    out["ComposeLabels"]["com.docker.compose.depends_on"] = ",".join(sorted((deps or "").split(",")))
    out["Ulimits"] = sorted(json.dumps(u, sort_keys=True) for u in host.get("Ulimits") or [])
    # Project names are the one thing that must differ (the bind source lives
    # in a directory named after B for both): replace them everywhere.
    text = json.dumps(out)
    for project in projects:
        text = text.replace(project, "<P>")
    return json.loads(text)


def inspect_project(
    client: docker.DockerClient, project: str, projects: tuple[str, str]
) -> dict[str, dict[str, Any]]:
    found = client.api.containers(all=True, filters={"label": f"com.docker.compose.project={project}"})
    raw = {c["Labels"]["com.docker.compose.service"]: client.api.inspect_container(c["Id"]) for c in found}
    service_of = {c["Id"]: svc for svc, c in raw.items()}
    return {svc: normalize(c, projects, service_of) for svc, c in raw.items()}


@pytest.fixture
def rt(docker_client: docker.DockerClient) -> DockerRuntime:
    return DockerRuntime(docker_client)


@pytest.fixture
def projects(cleanup_stacks: list[str]) -> tuple[str, str]:
    a, b = "ta" + uuid.uuid4().hex[:8], "tb" + uuid.uuid4().hex[:8]
    cleanup_stacks.extend([a, b])
    return a, b


def test_created_containers_equal_compose(
    tmp_path: Path, compose_bin: str, test_images: dict[str, str], docker_client: docker.DockerClient,
    rt: DockerRuntime, projects: tuple[str, str],
) -> None:
    a, b = projects
    root = project_of(tmp_path, b, FULL.format(**test_images))
    compose_file = root / b / "compose.yaml"
    compose(compose_bin, "-p", a, "-f", str(compose_file), "up", "-d", "--no-start", cwd=tmp_path)
    stack = load_stack(root, root / b)
    apply(rt, stack, start=False)

    oracle, ours = inspect_project(docker_client, a, projects), inspect_project(docker_client, b, projects)
    assert sorted(ours) == sorted(oracle) == ["side", "web", "web2"]
    for svc in oracle:
        for key in oracle[svc]:
            assert ours[svc][key] == oracle[svc][key], f"{svc}: {key} differs from docker compose"
    assert oracle["web"]["NetworkMode"] == "<P>_back"  # priority picks the primary network
    assert docker_client.api.inspect_network(f"{b}_front")["Attachable"] is True


def test_shared_namespaces_resources_and_ipam_equal_compose(
    tmp_path: Path, compose_bin: str, test_images: dict[str, str], docker_client: docker.DockerClient,
    rt: DockerRuntime, projects: tuple[str, str],
) -> None:
    """One project at a time: both would claim the same IPAM subnet."""
    a, b = projects
    outside = docker_client.api.create_container(test_images["v1"], name=f"{b}-outside", command=["true"])["Id"]
    try:
        text = SHARING.format(**test_images, outside=f"{b}-outside", octet=int(b[-2:], 16))
        root = project_of(tmp_path, b, text)
        compose_file = root / b / "compose.yaml"
        compose(compose_bin, "-p", a, "-f", str(compose_file), "up", "-d", "--no-start", cwd=tmp_path)
        oracle = inspect_project(docker_client, a, projects)
        oracle_net = docker_client.api.inspect_network(f"{a}_pool")["IPAM"]
        oracle_v6 = docker_client.api.inspect_network(f"{a}_pool6")["EnableIPv6"]
        oracle_vol = docker_client.api.inspect_volume(f"{a}_devdata")["Options"]
        compose(compose_bin, "-p", a, "-f", str(compose_file), "down", "-v", cwd=tmp_path)

        stack = load_stack(root, root / b)
        apply(rt, stack, start=False)
        ours = inspect_project(docker_client, b, projects)
        assert sorted(ours) == sorted(oracle) == ["app", "holder"]
        for svc in oracle:
            for key in oracle[svc]:
                assert ours[svc][key] == oracle[svc][key], f"{svc}: {key} differs from docker compose"
        assert oracle["app"]["ShmSize"] == 1572864 and oracle["app"]["IpcMode"] == "container:holder"
        assert docker_client.api.inspect_network(f"{b}_pool")["IPAM"] == oracle_net
        assert docker_client.api.inspect_network(f"{b}_pool6")["EnableIPv6"] is oracle_v6 is True
        assert docker_client.api.inspect_volume(f"{b}_devdata")["Options"] == oracle_vol
    finally:
        docker_client.api.remove_container(outside, force=True)


def test_kernel_and_resource_settings_equal_compose(
    tmp_path: Path, compose_bin: str, test_images: dict[str, str], docker_client: docker.DockerClient,
    rt: DockerRuntime, projects: tuple[str, str],
) -> None:
    a, b = projects
    root = project_of(tmp_path, b, TUNING.format(**test_images))
    compose(compose_bin, "-p", a, "-f", str(root / b / "compose.yaml"), "up", "-d", "--no-start", cwd=tmp_path)
    stack = load_stack(root, root / b)
    apply(rt, stack, start=False)
    oracle, ours = inspect_project(docker_client, a, projects), inspect_project(docker_client, b, projects)
    assert sorted(ours) == sorted(oracle) == ["plain", "tuned"]
    for svc in oracle:
        for key in oracle[svc]:
            assert ours[svc][key] == oracle[svc][key], f"{svc}: {key} differs from docker compose"
    tuned = oracle["tuned"]
    assert (tuned["UTSMode"], tuned["OomKillDisable"], tuned["MacAddress"]) == ("host", True, "02:42:ac:11:00:99")
    assert (tuned["Isolation"], oracle["plain"]["Isolation"]) == ("default", "")
    assert len(tuned["DeviceRequests"]) == 3


def _file_in(client: docker.DockerClient, container: str, path: str) -> tuple[str, int, int, str]:
    stream, _ = client.api.get_archive(container, path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.getmembers()[0]
        extracted = tar.extractfile(member)
        assert extracted is not None
        return member.name, member.mode, member.uid, extracted.read().decode()


def test_configs_and_device_secrets_as_compose_mounts_them(
    tmp_path: Path, compose_bin: str, test_images: dict[str, str], docker_client: docker.DockerClient,
    rt: DockerRuntime, projects: tuple[str, str],
) -> None:
    """Compose reads the secret from the repository; the agent from the device's secrets_dir."""
    a, b = projects
    root = project_of(tmp_path, b, FILES.format(**test_images))
    (root / b / ".env").write_text("TAG=t1\n")
    (root / b / "bindsrc" / "plain.txt").write_text("plain\n")
    (root / b / "bindsrc" / "pw.txt").write_text("from-git\n")
    secrets = tmp_path / "device-secrets"
    secrets.mkdir()
    (secrets / "pw").write_text("from-device\n")
    compose(compose_bin, "-p", a, "-f", str(root / b / "compose.yaml"), "up", "-d", cwd=tmp_path)
    stack = load_stack(root, root / b, secrets=secret_lookup(DeviceConfig("d1", secrets_dir=str(secrets))))
    ids = apply(rt, stack, start=True)

    def mounts(project: str) -> list[tuple[str, str, bool, str]]:
        info = docker_client.api.inspect_container(f"{project}-app-1")
        return sorted((m["Target"], "bindopts" if "BindOptions" in m else "-", m.get("ReadOnly", False),
                       m["Source"].replace(b, "<P>")) for m in info["HostConfig"]["Mounts"])

    theirs, ours = mounts(a), mounts(b)
    git_pw, device_pw = str(root / "<P>" / "bindsrc" / "pw.txt"), str(secrets / "pw")
    assert [m[:3] for m in ours] == [m[:3] for m in theirs]
    assert [m[3] for m in theirs if m[0].startswith("/run/secrets/")] == [git_pw, git_pw]
    assert [m[3] for m in ours if m[0].startswith("/run/secrets/")] == [device_pw, device_pw]
    assert [m for m in ours if not m[0].startswith("/run/secrets/")] == [
        m for m in theirs if not m[0].startswith("/run/secrets/")]
    for path in ("/etc/inline.conf", "/relative.conf"):
        assert _file_in(docker_client, ids["app"], path) == _file_in(docker_client, f"{a}-app-1", path)
    assert _file_in(docker_client, ids["app"], "/etc/inline.conf") == ("inline.conf", 0o100440, 1000, "key=t1\n")


def test_running_stack_is_a_compose_project(
    tmp_path: Path, compose_bin: str, test_images: dict[str, str], docker_client: docker.DockerClient,
    rt: DockerRuntime, projects: tuple[str, str],
) -> None:
    a, b = projects
    root = project_of(tmp_path, b, RUNNING.format(**test_images))
    compose(compose_bin, "-p", a, "-f", str(root / b / "compose.yaml"), "up", "-d", "--wait", cwd=tmp_path)
    stack = load_stack(root, root / b)
    ids = apply(rt, stack, start=True)

    deadline = time.monotonic() + 30
    while rt.inspect_state(ids["web"]).health != "healthy":
        assert time.monotonic() < deadline, f"web never turned healthy: {rt.inspect_state(ids['web'])}"
        time.sleep(0.5)
    state = rt.inspect_state(ids["web"])
    assert (state.status, state.restart_count, state.exit_code, state.oom_killed) == ("running", 0, 0, False)

    oracle, ours = inspect_project(docker_client, a, projects), inspect_project(docker_client, b, projects)
    for svc in oracle:
        for key in oracle[svc]:
            if key == "PortBindings":  # ephemeral host ports: same shape, numbers differ
                continue
            assert ours[svc][key] == oracle[svc][key], f"{svc}: {key} differs from docker compose"

    observed = rt.observe().for_stack(b)
    by_service = {c.service: c for c in observed}
    assert sorted(by_service) == ["web", "worker"]
    web = by_service["web"]
    assert (web.name, web.number, web.status, web.health) == (f"{b}-web-1", 1, "running", "healthy")
    assert (web.managed, web.kept, web.revision, web.config_hash) == (True, False, "rev0", "hash-web")
    assert web.image is not None and "@sha256:" in web.image
    assert by_service["worker"].health is None
    assert all(not c.managed for c in rt.observe().for_stack(a))  # compose's own are not ours

    empty = tmp_path / "elsewhere"
    empty.mkdir()
    ps = [json.loads(line) for line in compose(compose_bin, "-p", b, "ps", "--format", "json", cwd=empty).splitlines()]
    assert sorted((p["Service"], p["Name"], p["State"]) for p in ps) == [
        ("web", f"{b}-web-1", "running"),
        ("worker", f"{b}-worker-1", "running"),
    ]
    logs = compose(compose_bin, "-p", b, "logs", "--no-color", cwd=empty)
    assert "hello-from-the-app" in logs and "worker-up" in logs

    rt.stop_container(ids["worker"], timeout_s=2)
    assert rt.inspect_state(ids["worker"]).status == "exited"
    # docker compose can take the agent's stack down: containers and network go.
    compose(compose_bin, "-p", b, "down", cwd=empty)
    assert rt.observe().for_stack(b) == ()
    assert f"{b}_default" not in rt.observe().networks


def test_rename_restart_policy_and_remove(
    tmp_path: Path, test_images: dict[str, str], rt: DockerRuntime, docker_client: docker.DockerClient,
    projects: tuple[str, str],
) -> None:
    _, b = projects
    root = project_of(tmp_path, b, RUNNING.format(**test_images))
    stack = load_stack(root, root / b)
    ids = apply(rt, stack, start=False)
    rt.rename_container(ids["web"], f"{b}-web-1-kept")
    rt.set_restart_policy(ids["web"], "no")
    info = docker_client.api.inspect_container(ids["web"])
    assert info["Name"] == f"/{b}-web-1-kept"
    assert info["HostConfig"]["RestartPolicy"]["Name"] == "no"
    rt.remove_container(ids["web"])
    rt.remove_container(ids["web"])  # idempotent
    with pytest.raises(EngineNotFoundError):
        rt.start_container(ids["web"])
    with pytest.raises(EngineNotFoundError):
        rt.inspect_state(ids["web"])


def test_networks_and_volumes(rt: DockerRuntime, docker_client: docker.DockerClient, projects: tuple[str, str]) -> None:
    _, b = projects
    net = NetworkSpec("front", f"{b}_front")
    vol = VolumeSpec("data", f"{b}_data")
    for _ in range(2):  # idempotent
        rt.ensure_network(b, net)
        rt.ensure_volume(b, vol)
    labels = docker_client.api.inspect_network(net.name)["Labels"]
    assert labels["com.docker.compose.project"] == b and labels["com.docker.compose.network"] == "front"
    vlabels = docker_client.api.inspect_volume(vol.name)["Labels"]
    assert vlabels["com.docker.compose.project"] == b and vlabels["com.docker.compose.volume"] == "data"
    observed = rt.observe()
    assert net.name in observed.networks and vol.name in observed.volumes
    with pytest.raises(EngineNotFoundError, match="external"):
        rt.ensure_network(b, NetworkSpec("ext", f"{b}-absent", external=True))
    with pytest.raises(EngineNotFoundError, match="external"):
        rt.ensure_volume(b, VolumeSpec("ext", f"{b}-absent", external=True))
    rt.remove_network(net.name)
    rt.remove_network(net.name)  # idempotent
    assert net.name not in rt.observe().networks


def test_resolve_image_policies(
    rt: DockerRuntime, docker_client: docker.DockerClient, test_images: dict[str, str], registry: str
) -> None:
    ref = test_images["v1"]
    digest = docker_client.images.get_registry_data(ref).id
    pinned = f"{registry}/edge/app@{digest}"
    assert rt.resolve_image(ref, "always") == pinned
    assert rt.resolve_image(ref, "missing") == pinned  # local, pinned by its RepoDigest
    assert rt.resolve_image(ref, "never") == pinned
    assert rt.resolve_image(pinned, "always") == pinned
    rt.pull_image(pinned)  # present: no-op

    # Only in the registry: `missing` asks it, `never` refuses, pull fetches by digest.
    tag = "remote-" + uuid.uuid4().hex[:8]
    build_image(docker_client, f"{registry}/edge/app", tag, version=tag)
    remote_digest = push(docker_client, f"{registry}/edge/app:{tag}")
    docker_client.images.remove(f"{registry}/edge/app:{tag}", force=True)
    only_remote = f"{registry}/edge/app:{tag}"
    with pytest.raises(ImageNotFoundError, match="never"):
        rt.resolve_image(only_remote, "never")
    resolved = rt.resolve_image(only_remote, "missing")
    assert resolved == f"{registry}/edge/app@{remote_digest}"
    rt.pull_image(resolved)
    assert docker_client.images.get(resolved).attrs["RepoDigests"]
    docker_client.images.remove(resolved, force=True)

    # Built locally, never pushed: pinned to its image id.
    local_tag = "local-" + uuid.uuid4().hex[:8]
    image_id = build_image(docker_client, "edge-local/app", local_tag, version=local_tag)
    try:
        assert rt.resolve_image(f"edge-local/app:{local_tag}", "missing") == image_id
    finally:
        docker_client.images.remove(image_id, force=True)

    with pytest.raises(ImageNotFoundError):
        rt.resolve_image(f"{registry}/edge/app:no-such-tag", "always")


def test_registry_unreachable_is_a_transient_registry_error(rt: DockerRuntime) -> None:
    for policy in ("always", "missing"):
        with pytest.raises(RegistryError) as info:
            rt.resolve_image("127.0.0.1:1/x:y", policy)
        assert info.value.retryable and info.value.exit_code == 4
        assert not isinstance(info.value, ImageNotFoundError)
    with pytest.raises(RegistryError):
        rt.pull_image("127.0.0.1:1/x@sha256:" + "0" * 64)


def test_engine_unreachable_is_a_runtime_error(tmp_path: Path) -> None:
    rt = DockerRuntime(base_url=f"unix://{tmp_path}/no-docker.sock", timeout=3)
    started = time.monotonic()
    with pytest.raises(EngineError) as info:
        rt.observe()
    assert info.value.retryable and "unreachable" in str(info.value)
    assert time.monotonic() - started < 10


def test_events_window(
    tmp_path: Path, test_images: dict[str, str], rt: DockerRuntime, projects: tuple[str, str]
) -> None:
    _, b = projects
    root = project_of(tmp_path, b, RUNNING.format(**test_images))
    stack = load_stack(root, root / b)
    since = time.time() - 1
    ids = apply(rt, stack, start=True)
    rt.stop_container(ids["worker"], timeout_s=1)
    flt = {"type": "container", "label": f"com.docker.compose.project={b}"}
    seen = [(e.get("Action"), e.get("id")) for e in rt.events(since, time.time() + 1, flt)]
    for action in ("create", "start", "die", "stop"):
        assert (action, ids["worker"]) in seen, f"no {action} event for worker in {seen}"


def test_wait_for_change_wakes_on_health_and_exit_but_not_on_probes(
    tmp_path: Path, test_images: dict[str, str], rt: DockerRuntime, projects: tuple[str, str]
) -> None:
    """The health gate's wait: woken by the engine's health_status and die events of the given
    containers (also when they came between the mark and the call), never by the exec events
    of each probe (web is probed every second) nor by other containers."""
    _, b = projects
    root = project_of(tmp_path, b, RUNNING.format(**test_images))
    stack = load_stack(root, root / b)
    ids = apply(rt, stack, start=False)
    mark = rt.event_mark()
    rt.start_container(ids["web"])
    wakes = 0
    while rt.inspect_state(ids["web"]).health != "healthy":
        assert wakes < 60, "web never turned healthy"
        mark, woke = rt.event_mark(), rt.wait_for_change([ids["web"]], mark, 1.0)
        wakes += woke
    # the health_status event can be logged just after inspect shows it: let it pass once
    rt.wait_for_change([ids["web"]], rt.event_mark(), 1.0)
    # healthy now: its probes go on (exec events), but nothing about its state changes
    assert rt.wait_for_change([ids["web"]], rt.event_mark(), 2.5) is False
    rt.start_container(ids["worker"])
    mark = rt.event_mark()
    rt.stop_container(ids["worker"], timeout_s=2)  # before the wait: replayed from the mark
    # both clients: the SDK's (a client handed in) and the SDK-free one on the Unix socket
    for waiter in (rt, DockerRuntime(timeout=30)):
        assert waiter.wait_for_change([ids["worker"]], mark, 30) is True
        assert waiter.wait_for_change([ids["web"]], mark, 0.5) is False  # worker's events are not web's
