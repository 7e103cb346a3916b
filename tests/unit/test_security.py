"""The device security policy: one test per rule, plus the path edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_edge.core.security import check_stack, path_allowed
from gitops_edge.model.spec import DeviceRequest, Mount, ServiceSpec, StackSpec, VolumeSpec
from gitops_edge.model.trust import SecurityPolicy

ROOT = "/var/lib/gitops-edge/source/repo"
STRICT = SecurityPolicy()


def stack(*services: ServiceSpec, volumes: tuple[VolumeSpec, ...] = ()) -> StackSpec:
    return StackSpec(name="web", path="stacks/web", compose_file="stacks/web/compose.yaml",
                     services=services, volumes=volumes)  # fmt: skip


def svc(**kw: Any) -> ServiceSpec:
    return ServiceSpec(name="web", image="nginx:1", **kw)


def bind(source: str) -> Mount:
    return Mount(type="bind", source=source, target="/data")


def check(service: ServiceSpec, policy: SecurityPolicy = STRICT) -> list[str]:
    return check_stack(stack(service), policy, ROOT)


def test_a_plain_service_passes() -> None:
    assert check(svc(mounts=(Mount(type="volume", source="data", target="/d"),
                             Mount(type="tmpfs", target="/tmp")))) == []  # fmt: skip


def test_privileged_is_refused_unless_allowed() -> None:
    assert check(svc(privileged=True)) == [
        "web/web: privileged is not allowed by the device security policy (security.allow_privileged)"
    ]
    assert check(svc(privileged=True), SecurityPolicy(allow_privileged=True)) == []


def test_host_network_is_refused_unless_allowed() -> None:
    (line,) = check(svc(network_mode="host"))
    assert line.startswith("web/web: network_mode: host is not allowed")
    assert check(svc(network_mode="host"), SecurityPolicy(allow_host_network=True)) == []
    assert check(svc(network_mode="none")) == []
    assert check(svc(network_mode="service:db")) == []


def test_capabilities_beyond_the_allowed_ones_are_refused() -> None:
    service = svc(cap_add=("NET_ADMIN", "cap_sys_time", "CHOWN"))
    assert check(service) == [
        "web/web: cap_add NET_ADMIN is not allowed by the device security policy (security.allowed_capabilities)",
        "web/web: cap_add SYS_TIME is not allowed by the device security policy (security.allowed_capabilities)",
    ]  # CHOWN is in Docker's default set: adding it grants nothing
    assert check(service, SecurityPolicy(allowed_capabilities=("NET_ADMIN", "CAP_SYS_TIME"))) == []
    assert len(check(service, SecurityPolicy(allowed_capabilities=("NET_ADMIN",)))) == 1


def test_capability_all_needs_all() -> None:
    assert "cap_add ALL" in check(svc(cap_add=("ALL",)), SecurityPolicy(allowed_capabilities=("NET_ADMIN",)))[0]
    assert check(svc(cap_add=("ALL", "SYS_ADMIN")), SecurityPolicy(allowed_capabilities=("ALL",))) == []


def test_devices_must_match_an_allowed_glob() -> None:
    service = svc(devices=("/dev/ttyUSB0:/dev/ttyUSB0:rwm", "/dev/sda:/dev/sda:rwm"))
    assert check(service, SecurityPolicy(allowed_devices=("/dev/ttyUSB*",))) == [
        "web/web: device /dev/sda is not allowed by the device security policy (security.allowed_devices)"
    ]
    assert len(check(service)) == 2


def test_device_paths_are_normalized_before_matching() -> None:
    service = svc(devices=("/dev/ttyUSB0/../sda:/dev/x:rwm",))
    assert "device /dev/sda" in check(service, SecurityPolicy(allowed_devices=("/dev/ttyUSB*",)))[0]


def test_bind_mounts_of_repository_files_are_fine() -> None:
    assert check(svc(mounts=(bind(f"{ROOT}/stacks/web/nginx.conf"),))) == []


def test_bind_mounts_outside_the_repo_need_an_allowed_path() -> None:
    service = svc(mounts=(bind("/srv/data/web"), bind("/etc")))
    lines = check(service, SecurityPolicy(allowed_bind_paths=("/srv/data",)))
    assert lines == [
        "web/web: bind mount of /etc is not allowed by the device security policy: "
        "not under the repository or security.allowed_bind_paths"
    ]


def test_dotdot_cannot_escape_the_repo_or_an_allowed_path() -> None:
    escapes = svc(mounts=(bind(f"{ROOT}/../../../../etc"), bind("/srv/data/../../etc/shadow")))
    lines = check(escapes, SecurityPolicy(allowed_bind_paths=("/srv/data",)))
    assert [line.split(" is not")[0] for line in lines] == [
        "web/web: bind mount of /var/etc", "web/web: bind mount of /etc/shadow"
    ]


def test_a_prefix_must_match_whole_path_components() -> None:
    assert not path_allowed("/srv/database", ("/srv/data",), ROOT)
    assert path_allowed("/srv/data", ("/srv/data/",), ROOT)
    assert not path_allowed(f"{ROOT}-evil/x", (), ROOT)


def test_root_is_never_allowed_unless_listed_as_root() -> None:
    assert check(svc(mounts=(bind("/"),)), SecurityPolicy(allowed_bind_paths=("/srv",)))
    assert check(svc(mounts=(bind("//"),)))
    assert check(svc(mounts=(bind("/"), bind("/etc"))), SecurityPolicy(allowed_bind_paths=("/",))) == []
    assert not path_allowed("/etc", (), "/")  # a checkout root of / does not open everything


@pytest.mark.parametrize("source", ["/var/run/docker.sock", "/run/docker.sock", "//run/./docker.sock"])
def test_the_docker_socket_is_called_out(source: str) -> None:
    (line,) = check(svc(mounts=(bind(source),)))
    assert "the Docker socket gives root on the host" in line
    assert check(svc(mounts=(bind(source),)), SecurityPolicy(allowed_bind_paths=(source,))) == []


def test_a_directory_holding_the_docker_socket_is_called_out() -> None:
    (line,) = check(svc(mounts=(bind("/var/run"),)))
    assert "bind mount of /var/run (which holds /var/run/docker.sock)" in line
    assert "root on the host" in line


@pytest.mark.parametrize("opt", ["seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined",
                                 "label=disable", "label:disable", "systempaths=unconfined"])  # fmt: skip
def test_unconfined_security_opts_are_refused(opt: str) -> None:
    (line,) = check(svc(security_opt=(opt,)))
    assert line == (f"web/web: security_opt {opt} is not allowed by the device security policy "
                    "(security.allow_unconfined)")
    assert check(svc(security_opt=(opt,)), SecurityPolicy(allow_unconfined=True)) == []


def test_harmless_security_opts_pass() -> None:
    assert check(svc(security_opt=("no-new-privileges:true", "label=type:container_t"))) == []


def test_a_local_volume_with_o_bind_is_a_bind_mount() -> None:
    sneaky = VolumeSpec(key="etc", name="web_etc", driver_opts=(("device", "/etc"), ("o", "bind"), ("type", "none")))
    nfs = VolumeSpec(key="nfs", name="web_nfs", driver_opts=(("device", ":/export"), ("o", "addr=10.0.0.1,rw")))
    lines = check_stack(stack(svc(), volumes=(sneaky, nfs)), STRICT, ROOT)
    assert lines == ["web: volume etc: device (o: bind) /etc is not allowed by the device security policy: "
                     "not under the repository or security.allowed_bind_paths"]  # fmt: skip
    assert check_stack(stack(svc(), volumes=(sneaky,)), SecurityPolicy(allowed_bind_paths=("/etc",)), ROOT) == []


def test_every_violation_is_reported_with_its_service() -> None:
    other = ServiceSpec(name="db", image="postgres:16", privileged=True)
    lines = check_stack(stack(svc(network_mode="host", cap_add=("SYS_ADMIN",)), other), STRICT, ROOT)
    assert [line.split(":")[0] for line in lines] == ["web/web", "web/web", "web/db"]


@pytest.mark.parametrize(("kw", "allow", "phrase"), [
    ({"pid": "host"}, {"allow_host_pid": True}, "pid: host"),
    ({"ipc": "host"}, {"allow_host_ipc": True}, "ipc: host"),
    ({"runtime": "nvidia"}, {"allowed_runtimes": ("nvidia",)}, "runtime nvidia"),
    ({"ipc": "container:db"}, {"allow_foreign_containers": True}, "ipc: container:db"),
    ({"pid": "container:db"}, {"allow_foreign_containers": True}, "pid: container:db"),
    ({"network_mode": "container:db"}, {"allow_foreign_containers": True}, "network_mode: container:db"),
    ({"volumes_from": ("container:db:ro",)}, {"allow_foreign_containers": True}, "volumes_from: container:db:ro"),
    ({"external_links": ("redis:cache",)}, {"allow_foreign_containers": True}, "external_links: redis:cache"),
])
def test_host_and_foreign_namespaces_are_refused_unless_allowed(
    kw: dict[str, Any], allow: dict[str, Any], phrase: str
) -> None:
    problems = check(svc(**kw))
    assert len(problems) == 1 and phrase in problems[0] and "not allowed by the device security policy" in problems[0]
    assert check(svc(**kw), SecurityPolicy(**allow)) == []


def test_sharing_within_the_stack_and_runc_need_nothing() -> None:
    assert check(svc(ipc="service:db", pid="service:db", volumes_from=("db:ro",), runtime="runc",
                     shm_size=1 << 20, expose=("80",))) == []  # fmt: skip


def test_the_new_policy_keys_parse_from_the_agent_config() -> None:
    from gitops_edge.adapters.files.yaml_reader import parse_yaml
    from gitops_edge.core.config import parse_config

    text = ("source:\n  url: https://git.example.com/fleet.git\nsecurity:\n"
            "  allowed_runtimes: [nvidia]\n  allow_foreign_containers: true\n")
    doc = parse_yaml(text, "agent.yaml")
    cfg = parse_config(doc.data, file="agent.yaml", lines=doc.lines,  # type: ignore[arg-type]
                       environ={}, hostname="h")
    assert (cfg.security.allowed_runtimes, cfg.security.allow_foreign_containers) == (("nvidia",), True)


@pytest.mark.parametrize(("kw", "flag", "phrase"), [
    ({"uts": "host"}, "allow_host_uts", "uts: host"),
    ({"userns_mode": "host"}, "allow_host_userns", "userns_mode: host"),
    ({"cgroup": "host"}, "allow_host_cgroupns", "cgroup: host"),
    ({"cgroup_parent": "system.slice"}, "allow_cgroup_parent", "cgroup_parent system.slice"),
    ({"device_cgroup_rules": ("c 1:3 mr",)}, "allow_device_cgroup_rules", "device_cgroup_rules"),
    ({"device_requests": (DeviceRequest(count=-1, capabilities=("gpu",)),)}, "allow_gpus", "gpus"),
    ({"storage_opt": (("size", "1G"),)}, "allow_storage_opt", "storage_opt"),
    ({"oom_kill_disable": True}, "allow_oom_protection", "oom_kill_disable"),
    ({"oom_score_adj": -500}, "allow_oom_protection", "oom_score_adj -500"),
])
def test_kernel_settings_reaching_the_host_are_refused_unless_allowed(
    kw: dict[str, Any], flag: str, phrase: str
) -> None:
    problems = check(svc(**kw))
    assert len(problems) == 1 and phrase in problems[0] and f"(security.{flag})" in problems[0]
    assert check(svc(**kw), SecurityPolicy(**{flag: True})) == []


def test_harmless_kernel_settings_pass() -> None:
    assert check(svc(uts=None, cgroup="private", oom_score_adj=100, dns=("10.0.0.53",), cpu_shares=512,
                     mem_swappiness=10, group_add=("mail",))) == []  # fmt: skip


def test_device_secrets_need_no_bind_path_but_config_files_do() -> None:
    secret = Mount("bind", "/run/secrets/pw", "/etc/edge/secrets/pw", read_only=True, origin="secret")
    config = Mount("bind", "/cfg", "/etc/passwd", read_only=True, origin="config")
    assert check(svc(mounts=(secret,))) == []
    assert "bind mount of /etc/passwd" in check(svc(mounts=(config,)))[0]


def test_device_secrets_dir_parses_and_must_be_absolute() -> None:
    from gitops_edge.adapters.files.yaml_reader import parse_yaml
    from gitops_edge.core.config import parse_config
    from gitops_edge.errors import ConfigError

    def load(value: str) -> object:
        text = f"device:\n  secrets_dir: {value}\nsource:\n  url: https://git.example.com/fleet.git\n"
        doc = parse_yaml(text, "agent.yaml")
        return parse_config(doc.data, file="agent.yaml", lines=doc.lines,  # type: ignore[arg-type]
                            environ={}, hostname="h").device.secrets_dir
    assert load("/etc/gitops-edge/secrets") == "/etc/gitops-edge/secrets"
    with pytest.raises(ConfigError, match="absolute"):
        load("secrets")
