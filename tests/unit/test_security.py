"""The device security policy: every host-reaching key refused by default, allowed by its policy key."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gitops_edge.core.security import RESERVED, Finding, check_stack, normalize_security_opt, path_allowed
from gitops_edge.model.spec import DeviceRequest, Logging, Mount, NetworkSpec, ServiceSpec, StackSpec, VolumeSpec
from gitops_edge.model.trust import SecurityPolicy

ROOT = "/var/lib/gitops-edge/source/repo"
STRICT = SecurityPolicy()


def stack(*services: ServiceSpec, volumes: tuple[VolumeSpec, ...] = (),
          networks: tuple[NetworkSpec, ...] = ()) -> StackSpec:  # fmt: skip
    return StackSpec(name="web", path="stacks/web", compose_file="stacks/web/compose.yaml",
                     services=services or (svc(),), volumes=volumes, networks=networks)  # fmt: skip


def svc(**kw: Any) -> ServiceSpec:
    return ServiceSpec(name="web", image="nginx:1", **kw)


def bind(source: str, read_only: bool = False) -> Mount:
    return Mount(type="bind", source=source, target="/data", read_only=read_only)


def check(service: ServiceSpec, policy: SecurityPolicy = STRICT) -> list[Finding]:
    return check_stack(stack(service), policy, ROOT)


def keys(findings: list[Finding]) -> list[str]:
    return [f.policy_key for f in findings]


def local_vol(**opts: str) -> VolumeSpec:
    return VolumeSpec(key="v", name="web_v", driver_opts=tuple(sorted(opts.items())))


# (case, stack, policy key that allows it, the allowing policy)
CASES: list[tuple[str, StackSpec, str, SecurityPolicy]] = [
    ("privileged", stack(svc(privileged=True)), "allow_privileged", SecurityPolicy(allow_privileged=True)),
    ("host network", stack(svc(network_mode="host")), "allow_host_network", SecurityPolicy(allow_host_network=True)),
    ("container network", stack(svc(network_mode="container:other")), "allow_foreign_containers",
     SecurityPolicy(allow_foreign_containers=True)),
    ("cap_add", stack(svc(cap_add=("SYS_ADMIN",))), "allowed_capabilities",
     SecurityPolicy(allowed_capabilities=("SYS_ADMIN",))),
    ("device", stack(svc(devices=("/dev/sda:/dev/sda",))), "allowed_devices",
     SecurityPolicy(allowed_devices=("/dev/sd*",))),
    ("bind", stack(svc(mounts=(bind("/etc"),))), "allowed_bind_paths", SecurityPolicy(allowed_bind_paths=("/etc",))),
    ("seccomp unconfined", stack(svc(security_opt=("seccomp=unconfined",))), "allowed_security_opts",
     SecurityPolicy(allow_unconfined=True)),
    ("seccomp inline", stack(svc(security_opt=('seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',))),
     "allowed_security_opts", SecurityPolicy(allowed_security_opts=('seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',))),
    ("label type", stack(svc(security_opt=("label=type:spc_t",))), "allowed_security_opts",
     SecurityPolicy(allowed_security_opts=("label:type:spc_t",))),
    ("bare disable", stack(svc(security_opt=("disable",))), "allowed_security_opts",
     SecurityPolicy(allow_unconfined=True)),
    ("nnp false", stack(svc(security_opt=("no-new-privileges=false",))), "allowed_security_opts",
     SecurityPolicy(allow_unconfined=True)),
    ("host sysctl", stack(svc(sysctls=(("kernel.core_pattern", "|/x"),))), "allowed_sysctls",
     SecurityPolicy(allowed_sysctls=("kernel.core_*",))),
    ("net sysctl on the host network", stack(svc(network_mode="host", sysctls=(("net.ipv4.ip_forward", "1"),))),
     "allowed_sysctls", SecurityPolicy(allow_host_network=True, allowed_sysctls=("net.*",))),
    ("syslog", stack(svc(logging=Logging("syslog", (("syslog-address", "udp://1.2.3.4:514"),)))),
     "allowed_logging_drivers", SecurityPolicy(allowed_logging_drivers=("syslog",))),
    ("kept suffix", stack(svc(container_name="x-gitops-edge-kept")), RESERVED, SecurityPolicy(allow_unconfined=True)),
    ("repo root rw", stack(svc(mounts=(bind(f"{ROOT}/stacks/web/../.."),))), RESERVED,
     SecurityPolicy(allowed_bind_paths=("/",))),
    ("repo .git rw", stack(svc(mounts=(bind(f"{ROOT}/.git/hooks"),))), RESERVED,
     SecurityPolicy(allowed_bind_paths=("/",))),
    ("external volume", stack(volumes=(VolumeSpec(key="v", name="data", external=True),)),
     "allowed_external_volumes", SecurityPolicy(allowed_external_volumes=("data",))),
    ("named volume", stack(volumes=(VolumeSpec(key="v", name="other_data"),)), "allowed_external_volumes",
     SecurityPolicy(allowed_external_volumes=("other_data",))),
    ("volume driver", stack(volumes=(VolumeSpec(key="v", name="web_v", driver="sshfs"),)), "allowed_volume_drivers",
     SecurityPolicy(allowed_volume_drivers=("sshfs",))),
    ("o=bind", stack(volumes=(local_vol(type="none", o="bind", device="/etc"),)), "allowed_bind_paths",
     SecurityPolicy(allowed_bind_paths=("/etc",))),
    ("o=rbind into the repo", stack(volumes=(local_vol(type="none", o="rbind", device=f"{ROOT}/link"),)),
     "allowed_bind_paths", SecurityPolicy(allowed_bind_paths=(ROOT,))),
    ("type proc", stack(volumes=(local_vol(type="proc", device="proc"),)), "allowed_volume_types",
     SecurityPolicy(allowed_volume_types=("proc",))),
    ("overlay lowerdir", stack(volumes=(local_vol(type="overlay", device="overlay", o="lowerdir=/etc"),)),
     "allowed_volume_types", SecurityPolicy(allowed_volume_types=("overlay",), allowed_bind_paths=("/etc",))),
    ("nfs", stack(volumes=(local_vol(type="nfs", device=":/export", o="addr=10.0.0.1"),)), "allowed_volume_types",
     SecurityPolicy(allowed_volume_types=("nfs",))),
    ("block device", stack(volumes=(local_vol(type="ext4", device="/dev/sda1"),)), "allowed_volume_types",
     SecurityPolicy(allowed_volume_types=("ext4",), allowed_devices=("/dev/sda*",))),
    ("tmpfs odd option", stack(volumes=(local_vol(type="tmpfs", device="tmpfs", o="size=1m,huge=always"),)),
     "allowed_volume_types", SecurityPolicy(allowed_volume_types=("tmpfs",))),
    ("external network", stack(networks=(NetworkSpec(key="n", name="host", external=True),)),
     "allowed_external_networks", SecurityPolicy(allowed_external_networks=("host",))),
    ("network name", stack(networks=(NetworkSpec(key="n", name="other_default"),)), "allowed_external_networks",
     SecurityPolicy(allowed_external_networks=("other_default",))),
    ("macvlan", stack(networks=(NetworkSpec(key="n", name="web_n", driver="macvlan"),)), "allowed_network_drivers",
     SecurityPolicy(allowed_network_drivers=("macvlan",))),
    ("bridge name", stack(networks=(NetworkSpec(key="n", name="web_n",
                                                driver_opts=(("com.docker.network.bridge.name", "docker0"),)),)),
     "allowed_network_options", SecurityPolicy(allowed_network_options=("com.docker.network.bridge.name",))),
]  # fmt: skip


@pytest.mark.parametrize(("case", "st", "key", "allowing"), CASES, ids=[c[0] for c in CASES])
def test_each_host_reaching_key_is_refused_and_names_the_setting(
    case: str, st: StackSpec, key: str, allowing: SecurityPolicy
) -> None:
    *_, finding = check_stack(st, STRICT, ROOT)  # the last: host network comes before its sysctl
    assert finding.policy_key == key
    hint = "no device setting allows it" if key == RESERVED else f"allow with security.{key}"
    assert finding.message().endswith(f"({hint})")
    if key == RESERVED:
        assert finding in check_stack(st, allowing, ROOT)  # nothing allows it
    else:
        assert check_stack(st, allowing, ROOT) == []


@pytest.mark.parametrize(("kw", "key", "at"), [
    ({"pid": "host"}, "allow_host_pid", "pid"), ({"ipc": "host"}, "allow_host_ipc", "ipc"),
    ({"uts": "host"}, "allow_host_uts", "uts"), ({"userns_mode": "host"}, "allow_host_userns", "userns_mode"),
    ({"cgroup": "host"}, "allow_host_cgroupns", "cgroup"),
    ({"pid": "container:x"}, "allow_foreign_containers", "pid"),
    ({"ipc": "container:x"}, "allow_foreign_containers", "ipc"),
    ({"volumes_from": ("container:x:ro",)}, "allow_foreign_containers", "volumes_from"),
    ({"external_links": ("redis:cache",)}, "allow_foreign_containers", "external_links"),
    ({"runtime": "sysbox-runc"}, "allowed_runtimes", "runtime"),
    ({"cgroup_parent": "/system.slice"}, "allow_cgroup_parent", "cgroup_parent"),
    ({"device_requests": (DeviceRequest(count=-1, capabilities=("gpu",)),)}, "allow_gpus", "gpus"),
    ({"device_cgroup_rules": ("c 1:3 mr",)}, "allow_device_cgroup_rules", "device_cgroup_rules"),
    ({"storage_opt": (("size", "1G"),)}, "allow_storage_opt", "storage_opt"),
    ({"oom_kill_disable": True}, "allow_oom_protection", "oom_kill_disable"),
    ({"oom_score_adj": -500}, "allow_oom_protection", "oom_score_adj"),
])  # fmt: skip
def test_namespace_and_kernel_keys_are_refused_unless_allowed(kw: dict[str, Any], key: str, at: str) -> None:
    (finding,) = check(svc(**kw))
    assert finding.policy_key == key and finding.path[:3] == ("services", "web", at)
    value = next(iter(kw.values()))
    allowing = (value,) if key.startswith("allowed_") else True
    assert check(svc(**kw), replace(STRICT, **{key: allowing})) == []


def test_sharing_within_the_stack_and_harmless_kernel_settings_need_nothing() -> None:
    assert check(svc(ipc="service:db", pid="service:db", volumes_from=("db:ro",), runtime="runc", cgroup="private",
                     oom_score_adj=100, shm_size=1 << 20)) == []  # fmt: skip


def test_device_secrets_need_no_bind_path_but_config_files_do() -> None:
    secret = Mount("bind", "/run/secrets/pw", "/etc/edge/secrets/pw", read_only=True, origin="secret")
    config = Mount("bind", "/cfg", "/etc/passwd", read_only=True, origin="config")
    assert check(svc(mounts=(secret,))) == []
    assert check(svc(mounts=(config,)))[0].what == "bind mount of /etc/passwd"


def test_plainly_safe_keys_pass() -> None:
    plain = svc(
        mounts=(Mount(type="volume", source="data", target="/d"), Mount(type="tmpfs", target="/tmp"),
                bind(f"{ROOT}/stacks/web/nginx.conf"), bind(ROOT, read_only=True)),
        network_mode="service:db", security_opt=("no-new-privileges:true", "no-new-privileges"),
        sysctls=(("net.core.somaxconn", "1024"), ("kernel.shmmax", "1")), logging=Logging("json-file"),
        extra_hosts=("db:10.0.0.1",), cap_add=("CHOWN",), container_name="web",
    )  # fmt: skip
    volumes = (VolumeSpec(key="data", name="web_data"), local_vol(type="tmpfs", device="tmpfs", o="size=1m,uid=1"))
    nets = (NetworkSpec(key="default", name="web_default", driver="bridge",
                        driver_opts=(("com.docker.network.driver.mtu", "1400"),)),)  # fmt: skip
    assert check_stack(stack(plain, volumes=volumes, networks=nets), STRICT, ROOT) == []


def test_findings_carry_the_compose_key_path() -> None:
    found = check(svc(cap_add=("CHOWN", "NET_ADMIN"), mounts=(bind("/a"), bind("/etc"))),
                  SecurityPolicy(allowed_bind_paths=("/a",)))  # fmt: skip
    assert [f.path for f in found] == [("services", "web", "cap_add", 1), ("services", "web", "volumes", 1)]
    assert str(found[1]) == ("web: services.web.volumes[1]: bind mount of /etc is not allowed by the device "
                             "security policy: a host path outside the repository "
                             "(allow with security.allowed_bind_paths)")  # fmt: skip


def test_capability_all_needs_all() -> None:
    assert "cap_add ALL" in check(svc(cap_add=("ALL",)), SecurityPolicy(allowed_capabilities=("NET_ADMIN",)))[0].what
    assert check(svc(cap_add=("ALL", "SYS_ADMIN")), SecurityPolicy(allowed_capabilities=("ALL",))) == []


def test_device_paths_are_normalized_before_matching() -> None:
    service = svc(devices=("/dev/ttyUSB0/../sda:/dev/x:rwm",))
    assert check(service, SecurityPolicy(allowed_devices=("/dev/ttyUSB*",)))[0].what == "device /dev/sda"


def test_dotdot_cannot_escape_the_repo_or_an_allowed_path() -> None:
    escapes = svc(mounts=(bind(f"{ROOT}/../../../../etc"), bind("/srv/data/../../etc/shadow")))
    found = check(escapes, SecurityPolicy(allowed_bind_paths=("/srv/data",)))
    assert [f.what for f in found] == ["bind mount of /var/etc", "bind mount of /etc/shadow"]


def test_a_prefix_must_match_whole_path_components() -> None:
    assert not path_allowed("/srv/database", ("/srv/data",), ROOT)
    assert path_allowed("/srv/data", ("/srv/data/",), ROOT)
    assert not path_allowed(f"{ROOT}-evil/x", (), ROOT)
    assert not path_allowed("relative/etc", ("/",), ROOT)


def test_root_is_never_allowed_unless_listed_as_root() -> None:
    assert check(svc(mounts=(bind("/"),)), SecurityPolicy(allowed_bind_paths=("/srv",)))
    assert check(svc(mounts=(bind("//"),)))
    assert check(svc(mounts=(bind("/"), bind("/etc"))), SecurityPolicy(allowed_bind_paths=("/",))) == []
    assert not path_allowed("/etc", (), "/")  # a checkout root of / does not open everything


@pytest.mark.parametrize("source", ["/var/run/docker.sock", "/run/docker.sock", "//run/./docker.sock", "/var/run"])
def test_the_docker_socket_is_called_out(source: str) -> None:
    (found,) = check(svc(mounts=(bind(source),)))
    assert found.why == "the Docker socket gives root on the host"
    assert check(svc(mounts=(bind(source),)), SecurityPolicy(allowed_bind_paths=(source,))) == []


@pytest.mark.parametrize(("opt", "norm"), [
    ("seccomp:unconfined", "seccomp=unconfined"), ("Seccomp=Unconfined", "seccomp=unconfined"),
    ("label:disable", "label=disable"), ("label=type:spc_t", "label=type:spc_t"),
    ("label:type:spc_t", "label=type:spc_t"), ("disable", "disable"),
    ('seccomp={"A":1}', 'seccomp={"A":1}'), ("no-new-privileges:true", "no-new-privileges=true"),
])  # fmt: skip
def test_security_opts_normalize_both_spellings(opt: str, norm: str) -> None:
    assert normalize_security_opt(opt) == norm


def test_every_violation_is_reported_with_its_service() -> None:
    other = ServiceSpec(name="db", image="postgres:16", privileged=True)
    found = check_stack(stack(svc(network_mode="host", cap_add=("SYS_ADMIN",)), other), STRICT, ROOT)
    assert [f.path[:2] for f in found] == [("services", "web"), ("services", "web"), ("services", "db")]


def test_tilde_bind_is_a_host_path_the_policy_must_allow() -> None:
    """``~/data`` loads as Compose loads it (the agent's home), then meets the policy as any host path."""
    from gitops_edge.core.compose import build_stack

    st = build_stack({"services": {"web": {"image": "x", "volumes": ["~/data:/data"]}}}, {(): 1}, name="web",
                     stack_dir="stacks/web", compose_file="stacks/web/compose.yaml", root=ROOT, env={},
                     read_text=lambda rel: None, home="/home/edge")  # fmt: skip
    assert st.service("web").mounts[0].source == "/home/edge/data"
    (finding,) = check_stack(st, STRICT, ROOT)
    assert (finding.path[-2:], finding.policy_key) == (("volumes", 0), "allowed_bind_paths")
    assert "/home/edge/data" in finding.message()
    assert check_stack(st, SecurityPolicy(allowed_bind_paths=("/home/edge/data",)), ROOT) == []
    assert keys(check_stack(st, SecurityPolicy(allowed_bind_paths=("/home/other",)), ROOT)) == ["allowed_bind_paths"]
