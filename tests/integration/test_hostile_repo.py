"""A repository must never reach the host (issue 10): hostile commits through the real agent.

One baseline stack is deployed by ``gitops-edge sync`` on the real engine, next to
a compose project made by hand with the real ``docker compose``. Then each attack
is its own commit: the agent must refuse it (exit 3) with ``file:line: key`` and
the ``security.*`` key that would allow it (or say nothing can), before anything
changes: container ids and states, networks and volumes of both projects are
the same afterwards. With the default policy: no ``security:`` section at all.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from gitops_edge.demo import tinyimage
from gitops_edge.model.observed import KEPT_SUFFIX
from tests.conftest import git
from tests.integration.agent_harness import Device
from tests.support.cleanup import remove_project

SERVE = json.dumps(tinyimage.SERVE)


@dataclass
class Bench:
    device: Device
    stack: str  # the agent's stack
    foreign: str  # a compose project made by hand
    plain: str  # a container made by `docker run --name`, no compose labels
    image: str
    client: docker.DockerClient
    compose_bin: str
    workdir: Path

    @property
    def clone(self) -> Path:
        return self.device.workdir / "state/source/repo"

    def compose_file(self, extra: str = "", top: str = "", mount: str = "") -> str:
        """The baseline stack plus ``extra`` service keys, a ``mount`` and ``top``-level sections."""
        return (f"services:\n  web:\n    image: {self.image}\n    command: {SERVE}\n"
                f"    volumes: [data:/data{', ' + mount if mount else ''}]\n"
                f"    networks: [default, back{', evil' if 'networks.evil' in top else ''}]\n{extra}"
                f"networks:\n  back: {{}}\n{_nested(top, 'networks')}"
                f"volumes:\n  data: {{}}\n{_nested(top, 'volumes')}")  # fmt: skip

    def view(self) -> dict[str, Any]:
        """What an attack must not change: both projects' containers, networks and volumes."""
        out: dict[str, Any] = {}
        for project in (self.stack, self.foreign):
            flt = {"label": f"com.docker.compose.project={project}"}
            cs = self.client.containers.list(all=True, filters=flt, ignore_removed=True)
            out[project] = (
                sorted((c.id, c.name, c.status, c.attrs["State"]["StartedAt"]) for c in cs),
                sorted((n.id, n.name) for n in self.client.networks.list(filters=flt)),
                sorted(v.name for v in self.client.volumes.list(filters=flt)),
            )
        out["named"] = sorted(n.name for n in self.client.networks.list() if n.name.startswith(self.stack))
        plain = self.client.api.containers(all=True, filters={"name": f"^/{self.plain}$"})
        out["plain"] = sorted((c["Id"], c["State"]) for c in plain)
        return out


def _nested(top: str, section: str) -> str:
    """Lines of ``top`` under ``section:`` (``top`` is ``section.key: yaml`` lines)."""
    return "".join(f"  {line.split('.', 1)[1]}\n" for line in top.splitlines() if line.startswith(section + "."))


def _compose_up(compose_bin: str, workdir: Path, project: str, text: str) -> None:
    d = workdir / project
    d.mkdir(parents=True, exist_ok=True)
    (d / "compose.yaml").write_text(text)
    out = subprocess.run([compose_bin, "-p", project, "-f", str(d / "compose.yaml"), "up", "-d"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def bench(
    tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient, test_images: dict[str, str],
    compose_bin: str,
) -> Iterator[Bench]:
    work = tmp_path_factory.mktemp("hostile")
    repo = work / "fleet"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (work / "device").mkdir()
    dev = Device(repo=repo, workdir=work / "device", client=docker_client)
    tag = uuid.uuid4().hex[:8]
    b = Bench(dev, f"hs{tag}", f"hand{tag}", f"plain{tag}", test_images["v1"], docker_client, compose_bin, work)
    try:
        docker_client.containers.run(b.image, tinyimage.SERVE, name=b.plain, detach=True, network_mode="none")
        _compose_up(compose_bin, work / "compose", b.foreign,
                    f"services:\n  app:\n    image: {b.image}\n    command: {SERVE}\n")  # fmt: skip
        dev.commit({"README.md": "fleet\n", f"{b.stack}/compose.yaml": b.compose_file()}, "baseline")
        out = dev.cli("sync")
        assert out.returncode == 0, out.stderr
        yield b
    finally:
        for project in (b.stack, b.foreign, f"{b.stack}_x"):
            remove_project(docker_client, project)
        for c in docker_client.containers.list(all=True, filters={"name": f"^/{b.plain}$"}):
            c.remove(force=True)


# (id, service keys, top-level `section.key: yaml` lines, extra mount, key path, policy key or None: reserved)
ATTACKS: list[tuple[str, str, str, str, str, str | None]] = [
    ("bind of /", "", "", "'/:/host'", "services.web.volumes[1]", "allowed_bind_paths"),
    ("docker socket", "", "", "'/var/run/docker.sock:/s'", "services.web.volumes[1]", "allowed_bind_paths"),
    ("bind of ~", "", "", "'~/.ssh:/s'", "services.web.volumes[1]", "allowed_bind_paths"),  # the agent's home
    ("seccomp inline JSON", "    security_opt: ['seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}']\n", "", "",
     "services.web.security_opt[0]", "allowed_security_opts"),
    ("seccomp unconfined", "    security_opt: ['seccomp:unconfined']\n", "", "", "services.web.security_opt[0]",
     "allowed_security_opts"),
    ("apparmor unconfined", "    security_opt: [apparmor=unconfined]\n", "", "", "services.web.security_opt[0]",
     "allowed_security_opts"),
    ("label disable", "    security_opt: ['label:disable']\n", "", "", "services.web.security_opt[0]",
     "allowed_security_opts"),
    ("label type", "    security_opt: ['label=type:spc_t']\n", "", "", "services.web.security_opt[0]",
     "allowed_security_opts"),
    ("bare disable", "    security_opt: [disable]\n", "", "", "services.web.security_opt[0]",
     "allowed_security_opts"),
    ("no-new-privileges false", "    security_opt: ['no-new-privileges=false']\n", "", "",
     "services.web.security_opt[0]", "allowed_security_opts"),
    ("systempaths unconfined", "    security_opt: [systempaths=unconfined]\n", "", "",
     "services.web.security_opt[0]", "allowed_security_opts"),
    ("privileged", "    privileged: true\n", "", "", "services.web.privileged", "allow_privileged"),
    ("privileged post_start hook", "    post_start: [{command: [id]}, {command: [id], privileged: true}]\n", "", "",
     "services.web.post_start[1].privileged", "allow_privileged"),
    ("privileged pre_stop hook", "    pre_stop:\n      - command: [id]\n        privileged: 'true'\n", "", "",
     "services.web.pre_stop[0].privileged", "allow_privileged"),
    ("cap_add", "    cap_add: [SYS_ADMIN]\n", "", "", "services.web.cap_add[0]", "allowed_capabilities"),
    ("device", "    devices: ['/dev/mem:/dev/mem']\n", "", "", "services.web.devices[0]", "allowed_devices"),
    ("host sysctl", "    sysctls: {kernel.core_pattern: '|/tmp/x'}\n", "", "",
     "services.web.sysctls.kernel.core_pattern", "allowed_sysctls"),
    ("logging off the device", "    logging: {driver: syslog, options: {syslog-address: 'udp://10.9.9.9:514'}}\n",
     "", "", "services.web.logging.driver", "allowed_logging_drivers"),
    ("kept suffix container_name", f"    container_name: x{KEPT_SUFFIX}\n", "", "", "services.web.container_name",
     None),
    ("volume o: rbind", "", "volumes.evil: {driver_opts: {type: none, o: rbind, device: /etc}}", "'evil:/e'",
     "volumes.evil.driver_opts.device", "allowed_bind_paths"),
    ("volume overlay lowerdir", "", "volumes.evil: {driver_opts: {type: overlay, device: overlay, "
     "o: 'lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w'}}", "'evil:/e'", "volumes.evil.driver_opts.o",
     "allowed_bind_paths"),
    ("volume type proc", "", "volumes.evil: {driver_opts: {type: proc, device: proc}}", "'evil:/e'",
     "volumes.evil.driver_opts.type", "allowed_volume_types"),
    ("volume driver", "", "volumes.evil: {driver: sshfs}", "'evil:/e'", "volumes.evil.driver",
     "allowed_volume_drivers"),
    ("external volume", "", "volumes.evil: {external: true, name: other_data}", "'evil:/e'", "volumes.evil.external",
     "allowed_external_volumes"),
    ("volume name:", "", "volumes.evil: {name: other_data}", "'evil:/e'", "volumes.evil.name",
     "allowed_external_volumes"),
    ("external network host", "", "networks.evil: {external: true, name: host}", "", "networks.evil.external",
     "allowed_external_networks"),
    ("network macvlan", "", "networks.evil: {driver: macvlan, driver_opts: {parent: eth0}}", "",
     "networks.evil.driver", "allowed_network_drivers"),
    ("network bridge name", "", "networks.evil: {driver_opts: {com.docker.network.bridge.name: docker0}}", "",
     "networks.evil.driver_opts.com.docker.network.bridge.name", "allowed_network_options"),
]  # fmt: skip

# Keys the loader refuses as unsupported today (exit 2); once it parses them, the policy (exit 3).
NOT_YET_PARSED = ["pid: host", "ipc: host", "uts: host", "userns_mode: host", "cgroup: host",
                  "cgroup_parent: /system.slice", "runtime: sysbox-runc", "gpus: all",
                  "device_cgroup_rules: ['c 1:1 rwm']", "volumes_from: ['container:x']"]  # fmt: skip


def _refused(b: Bench, files: dict[str, str | None], key_path: str, policy_key: str | None, code: int = 3) -> None:
    before = b.view()
    rev = b.device.commit(files, f"attack: {key_path}")
    out = b.device.cli("sync")
    assert out.returncode == code, f"exit {out.returncode}\n{out.stderr}"
    assert "Traceback" not in out.stderr
    hint = f"allow with security.{policy_key}" if policy_key else "no device setting allows it"
    where = rf"devices/d1/[\w/]+\.yaml:\d+: {re.escape(key_path)}: "
    assert re.search(where + r".*" + re.escape(f"({hint})"), out.stderr), out.stderr
    assert b.view() == before, f"the engine changed after {rev[:12]}"


@pytest.mark.parametrize(("name", "extra", "top", "mount", "key_path", "policy_key"), ATTACKS,
                         ids=[a[0] for a in ATTACKS])  # fmt: skip
def test_attack_is_refused_before_anything_changes(
    bench: Bench, name: str, extra: str, top: str, mount: str, key_path: str, policy_key: str | None
) -> None:
    compose = bench.compose_file(extra, top, mount)
    _refused(bench, {f"{bench.stack}/compose.yaml": compose}, key_path, policy_key)


def test_network_mode_container_joins_nothing(bench: Bench) -> None:
    """``container:<any>`` joins another container's namespace (e.g. a host-networked one)."""
    victim = f"{bench.foreign}-app-1"
    compose = bench.compose_file().replace("    networks: [default, back]\n", f"    network_mode: container:{victim}\n")
    _refused(bench, {f"{bench.stack}/compose.yaml": compose}, "services.web.network_mode", "allow_foreign_containers")


def _refused_somehow(b: Bench, files: dict[str, str | None], key_path: str, needle: str) -> None:
    """Refused by the loader (exit 2) or the policy (exit 3), naming the key; nothing changes."""
    before = b.view()
    b.device.commit(files, f"attack: {key_path}")
    out = b.device.cli("sync")
    assert out.returncode in (2, 3), f"exit {out.returncode}\n{out.stderr}"
    where = rf"devices/d1/[\w/]+\.yaml(:\d+)?: {re.escape(key_path)}"
    assert re.search(where + ".*" + re.escape(needle), out.stderr), out.stderr
    assert b.view() == before


@pytest.mark.parametrize("mount", ["'../../../.git:/g'", "'../../../.git/hooks:/h:ro'", "'../../../.git/config:/c'"])
def test_git_internals_never_reach_a_container(bench: Bench, mount: str) -> None:
    _refused_somehow(bench, {f"{bench.stack}/compose.yaml": bench.compose_file(mount=mount)},
                     "services.web.volumes", ".git")  # fmt: skip


def test_a_bind_of_the_repository_is_a_read_only_copy_without_git(bench: Bench) -> None:
    """``../../..:/repo`` passes confinement; the container gets the revision's tree, never the clone."""
    hooks_before = sorted(p.name for p in (bench.clone / ".git/hooks").glob("*"))
    bench.device.commit({f"{bench.stack}/compose.yaml": bench.compose_file(mount="'../../..:/repo'")}, "bind repo")
    out = bench.device.cli("sync")
    try:
        assert out.returncode == 0, out.stderr
        (web,) = bench.device.containers(bench.stack).values()
        (repo,) = [m for m in web.attrs["Mounts"] if m["Destination"] == "/repo"]
        source = Path(repo["Source"])
        assert source.is_relative_to(bench.device.workdir / "state/trees") and not (source / ".git").exists()
        code, _ = web.exec_run(["sh", "-c", "ls -a /repo; test ! -e /repo/.git"])
        assert code == 0
        assert sorted(p.name for p in (bench.clone / ".git/hooks").glob("*")) == hooks_before
    finally:
        bench.device.commit({f"{bench.stack}/compose.yaml": bench.compose_file()}, "back to the baseline")
        assert bench.device.cli("sync").returncode == 0


def test_bind_through_a_committed_symlink_to_a_host_dir(bench: Bench) -> None:
    """A local volume's ``device`` inside the clone that is a symlink: mount(2) would follow it to /etc."""
    link = bench.device.repo / bench.device.path / bench.stack / "hostlink"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/etc")
    try:
        for device in (bench.clone / bench.device.path / bench.stack / "hostlink", link):
            compose = bench.compose_file(top=f"volumes.evil: {{driver_opts: {{type: none, o: bind, "
                                             f"device: '{device}'}}}}", mount="'evil:/e'")  # fmt: skip
            _refused_somehow(bench, {f"{bench.stack}/compose.yaml": compose}, "volumes.evil.driver_opts.device", "")
    finally:
        link.unlink()


def test_container_name_of_another_projects_container(bench: Bench) -> None:
    compose = bench.compose_file(f"    container_name: {bench.foreign}-app-1\n")
    _refused(bench, {f"{bench.stack}/compose.yaml": compose}, "services.web.container_name", None)


def test_container_name_of_a_container_made_with_docker_run(bench: Bench) -> None:
    compose = bench.compose_file(f"    container_name: {bench.plain}\n")
    _refused(bench, {f"{bench.stack}/compose.yaml": compose}, "services.web.container_name", None)


def test_a_stack_named_like_a_hand_made_project_is_not_taken_over(bench: Bench) -> None:
    hijack = f"services:\n  other:\n    image: {bench.image}\n    command: {SERVE}\n"
    try:
        _refused(bench, {f"{bench.stack}/compose.yaml": bench.compose_file(), f"{bench.foreign}/compose.yaml": hijack},
                 "services", "adopt_projects")  # fmt: skip
    finally:
        bench.device.commit({f"{bench.foreign}/compose.yaml": None}, "drop the hijack")


@pytest.mark.parametrize("extra", NOT_YET_PARSED)
def test_keys_the_loader_does_not_parse_yet_change_nothing(bench: Bench, extra: str) -> None:
    key = extra.split(":", 1)[0]
    before = bench.view()
    bench.device.commit({f"{bench.stack}/compose.yaml": bench.compose_file(f"    {extra}\n")}, f"attack: {key}")
    out = bench.device.cli("sync")
    assert out.returncode in (2, 3), out.stderr
    assert f"services.web.{key}" in out.stderr, out.stderr
    if out.returncode == 3:
        assert "security." in out.stderr, out.stderr
    assert bench.view() == before


@pytest.mark.parametrize("extra", ["    scale: 2\n", "    deploy: {replicas: 3}\n"], ids=["scale", "replicas"])
def test_a_fixed_container_name_with_replicas_changes_nothing(bench: Bench, extra: str) -> None:
    """Compose refuses ``container_name`` with more than one replica (names are unique): so does the
    agent, located at the container_name, exit 2."""
    before = bench.view()
    extra = f"    container_name: {bench.stack}-fixed\n{extra}"
    bench.device.commit({f"{bench.stack}/compose.yaml": bench.compose_file(extra)}, "replicas")
    out = bench.device.cli("sync")
    assert out.returncode == 2, out.stderr
    where = r"devices/d1/[\w/]+\.yaml:\d+: services\.web\.container_name: can't set container_name with \d replicas"
    assert re.search(where, out.stderr), out.stderr
    assert bench.view() == before


def test_removing_a_stack_leaves_another_projects_prefixed_network(bench: Bench) -> None:
    """``<stack>_x`` is another compose project; its ``<stack>_x_default`` network is not the stack's."""
    other = f"{bench.stack}_x"
    _compose_up(bench.compose_bin, bench.workdir / "compose", other,
                f"services:\n  app:\n    image: {bench.image}\n    command: {SERVE}\n")  # fmt: skip
    flt = {"label": f"com.docker.compose.project={other}"}
    (theirs,) = bench.client.containers.list(filters=flt)
    assert {n.name for n in bench.client.networks.list(filters=flt)} == {f"{other}_default"}
    bench.device.commit({f"{bench.stack}/compose.yaml": None}, "remove the stack")

    out = bench.device.cli("sync")

    assert out.returncode == 0, out.stderr
    mine = {"label": f"com.docker.compose.project={bench.stack}"}
    assert bench.client.containers.list(all=True, filters=mine) == []
    assert bench.client.networks.list(filters=mine) == []
    assert {n.name for n in bench.client.networks.list(filters=flt)} == {f"{other}_default"}
    theirs.reload()
    assert theirs.status == "running"
