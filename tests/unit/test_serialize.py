"""core.serialize and core.hashing: canonical JSON, round trips, the spec hash."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest

from gitops_edge.core.hashing import NOT_HASHED, changed_fields, config_hash
from gitops_edge.core.serialize import (
    canonical_json,
    from_data,
    stack_from_json,
    stack_services_from_json,
    stack_to_json,
    to_data,
)
from gitops_edge.model.spec import (
    Blkio,
    Dependency,
    DeviceRequest,
    Healthcheck,
    InjectedFile,
    Ipam,
    IpamPool,
    Logging,
    Mount,
    NetworkAttachment,
    NetworkSpec,
    PortMapping,
    ServiceHook,
    ServiceSpec,
    StackSpec,
    Ulimit,
    VolumeSpec,
)


def full_service() -> ServiceSpec:
    """Every field away from its default, nested dataclasses and optionals included."""
    return ServiceSpec(
        name="web",
        image="reg/app:v1",
        command=("httpd", "-f"),
        entrypoint=("/bin/sh", "-c"),
        environment=(("A", "1"), ("UNSET", None)),
        ports=(PortMapping(8080, "18080", "127.0.0.1", "udp"), PortMapping(9000)),
        mounts=(Mount("volume", "/data", "data", read_only=True, volume_nocopy=True),
                Mount("tmpfs", "/tmp", tmpfs_size=1 << 20, tmpfs_mode=0o1777, tmpfs_options="size=1m"),
                Mount("bind", "/etc/x", "/srv/x", bind_create_host_path=False, bind_selinux="z",
                      bind_propagation="rslave"),
                Mount("bind", "/run/secrets/pw", "/etc/edge/secrets/pw", read_only=True, origin="secret")),
        networks=(NetworkAttachment("front", ("www", "web.local"), "10.0.0.5", "fd00::5", priority=5,
                                    link_local_ips=("169.254.1.1",), driver_opts=(("o", "1"),)),
                  NetworkAttachment("default")),
        depends_on=(Dependency("db", "service_healthy", restart=True, required=False),),
        healthcheck=Healthcheck(("CMD", "true"), 1_000_000_000, 2_000_000_000, 3, 0, disable=False),
        restart="unless-stopped",
        labels=(("a", "b"),),
        user="1000:1000",
        working_dir="/app",
        read_only=True,
        cap_add=("CAP_NET_ADMIN",),
        cap_drop=("CAP_ALL",),
        devices=("/dev/ttyUSB0:/dev/ttyUSB0:rwm",),
        privileged=True,
        security_opt=("no-new-privileges:true",),
        logging=Logging("json-file", (("max-size", "10m"),)),
        mem_limit=64 << 20,
        cpus=0.5,
        stop_grace_period_ns=30_000_000_000,
        stop_signal="SIGINT",
        container_name="the-web",
        replicas=2,
        hostname="web",
        extra_hosts=("gw:10.0.0.1",),
        ulimits=(Ulimit("nofile", 1024, 2048),),
        sysctls=(("net.core.somaxconn", "1024"),),
        init=True,
        profiles=("edge",),
        pull_policy="always",
        tty=True,
        stdin_open=True,
        expose=("80", "8000-8001/udp"),
        shm_size=64 << 20,
        platform="linux/arm64",
        runtime="runc",
        volumes_from=("db:ro", "container:other"),
        ipc="shareable",
        pid="host",
        pids_limit=100,
        mem_reservation=32 << 20,
        uts="host",
        isolation="default",
        userns_mode="host",
        cgroup="private",
        cgroup_parent="edge.slice",
        device_cgroup_rules=("c 1:3 mr",),
        dns=("10.0.0.53",),
        dns_search=("example.com",),
        dns_opt=("use-vc",),
        domainname="example.com",
        mac_address="02:42:ac:11:00:99",
        group_add=("mail",),
        oom_score_adj=-5,
        oom_kill_disable=True,
        memswap_limit=-1,
        mem_swappiness=10,
        cpu_shares=512,
        cpu_quota=50000,
        cpu_period=100000,
        cpu_rt_runtime=400,
        cpu_rt_period=1400,
        cpuset="0-1",
        cpu_count=2,
        cpu_percent=50,
        blkio=Blkio(300, (("/dev/sda", 400),), (("/dev/sda", 1 << 20),), (), (), (("/dev/sda", 30),)),
        annotations=(("a", "b"),),
        device_requests=(DeviceRequest("nvidia", -1, ("0",), ("gpu",), (("o", "1"),)),),
        storage_opt=(("size", "1G"),),
        files=(InjectedFile("/etc/app.conf", "k=1\n", "1000", "0", 0o440),),
        links=("db:database",),
        external_links=("redis:cache",),
        post_start=(ServiceHook(("sh", "-c", "touch /ready"), "root", True, "/srv", (("A", "1"), ("B", None))),),
        pre_stop=(ServiceHook(("sync",)), ServiceHook(("sync",))),
    )


def full_stack() -> StackSpec:
    return StackSpec(
        name="s",
        path="devices/d1/s",
        compose_file="devices/d1/s/compose.yaml",
        services=(full_service(), ServiceSpec("db", "reg/db:1", network_mode="service:web")),
        networks=(NetworkSpec("default", "s_default"),
                  NetworkSpec("front", "shared-front", external=True, driver="bridge",
                              driver_opts=(("mtu", "1400"),), internal=True, labels=(("x", "y"),), attachable=True,
                              enable_ipv6=True,
                              ipam=Ipam("default", (IpamPool("10.5.0.0/16", "10.5.1.0/24", "10.5.1.1",
                                                             (("h", "10.5.0.9"),)),)))),
        volumes=(VolumeSpec("data", "s_data", driver="local", driver_opts=(("type", "tmpfs"),),
                            labels=(("k", "v"),)),),
    )


def test_every_service_field_is_set_away_from_its_default() -> None:
    default = ServiceSpec("web", "reg/app:v1")
    web, db = full_stack().services
    same = [f.name for f in fields(ServiceSpec)
            if getattr(default, f.name) == getattr(web, f.name) and getattr(default, f.name) == getattr(db, f.name)]
    assert same == []  # so the round trip below covers every field


def test_stack_round_trips_exactly_through_json() -> None:
    st = full_stack()
    text = stack_to_json(st)
    back = stack_from_json(text)
    assert back == st
    # tuples come back as tuples (hashable, frozen), optionals as None or the dataclass
    svc = back.service("web")
    assert isinstance(svc.environment, tuple) and svc.environment[1] == ("UNSET", None)
    assert isinstance(svc.environment[0], tuple)
    assert isinstance(svc.healthcheck, Healthcheck) and isinstance(svc.logging, Logging)
    assert isinstance(svc.networks[0].aliases, tuple)
    db = back.service("db")
    assert db.healthcheck is None and db.logging is None and db.command is None and db.init is None
    hash(back)  # every nested value is hashable
    assert stack_to_json(back) == text


def test_canonical_json_is_compact_and_sorted() -> None:
    text = canonical_json(Dependency("db"))
    assert text == '{"condition":"service_started","required":true,"restart":false,"service":"db"}'
    assert json.loads(stack_to_json(full_stack()))["services"][0]["ports"][1] == {
        "host_ip": None, "protocol": "tcp", "published": None, "target": 9000}


def test_missing_fields_take_their_defaults_when_reading_older_records() -> None:
    data = to_data(ServiceSpec("web", "img"))
    del data["tty"], data["healthcheck"]
    assert from_data(ServiceSpec, data) == ServiceSpec("web", "img")


def test_config_hash_is_stable_across_equal_specs() -> None:
    a, b = full_stack(), stack_from_json(stack_to_json(full_stack()))
    h = config_hash(a, a.service("web"))
    assert h == config_hash(b, b.service("web"))
    assert len(h) == 64 and int(h, 16) >= 0
    assert config_hash(a, a.service("db")) != h


@pytest.mark.parametrize(("field", "value"), [
    ("depends_on", ()), ("profiles", ("other",)), ("pull_policy", "never"), ("image", "reg/app:v2"),
])
def test_config_hash_ignores_what_does_not_shape_the_container(field: str, value: object) -> None:
    st = full_stack()
    changed = replace(st.service("web"), **{field: value})
    assert config_hash(st, changed) == config_hash(st, st.service("web"))
    assert changed_fields(st.service("web"), changed) == []


@pytest.mark.parametrize(("field", "value"), [
    ("environment", (("A", "2"),)), ("command", None), ("restart", "no"), ("cpus", 1.0),
    ("healthcheck", None), ("labels", ()), ("ports", ()), ("name", "web2"),
])
def test_config_hash_sees_what_shapes_the_container(field: str, value: object) -> None:
    st = full_stack()
    changed = replace(st.service("web"), **{field: value})
    assert config_hash(st, changed) != config_hash(st, st.service("web"))
    assert changed_fields(st.service("web"), changed) == [field]


def test_config_hash_folds_in_docker_names_of_used_networks_and_volumes() -> None:
    st = full_stack()
    web = st.service("web")
    h = config_hash(st, web)
    renamed_net = replace(st, networks=(st.networks[0], replace(st.networks[1], name="other-front")))
    assert config_hash(renamed_net, web) != h
    renamed_vol = replace(st, volumes=(replace(st.volumes[0], name="elsewhere"),))
    assert config_hash(renamed_vol, web) != h
    # a network the service does not use is none of its business
    extra = replace(st, networks=(*st.networks, NetworkSpec("back", "s_back")))
    assert config_hash(extra, web) == h


def test_not_hashed_is_exactly_the_documented_set() -> None:
    assert {"depends_on", "profiles", "pull_policy", "image", "replicas"} == NOT_HASHED


def test_changed_fields_in_declaration_order() -> None:
    old = full_service()
    new = replace(old, user="0", environment=(), tty=False, depends_on=())
    assert changed_fields(old, new) == ["environment", "user", "tty"]
    assert changed_fields(old, old) == []


ISSUE_12_FIELDS = [
    f.name for f in fields(ServiceSpec)
    if f.name not in NOT_HASHED and f.name not in {
        "name", "command", "entrypoint", "environment", "ports", "mounts", "networks", "network_mode",
        "healthcheck", "restart", "labels", "user", "working_dir", "read_only", "cap_add", "cap_drop", "devices",
        "privileged", "security_opt", "logging", "mem_limit", "cpus", "stop_grace_period_ns", "stop_signal",
        "container_name", "hostname", "extra_hosts", "ulimits", "sysctls", "init", "tty", "stdin_open"}
]


@pytest.mark.parametrize("field", ISSUE_12_FIELDS)
def test_every_new_compose_field_is_hashed(field: str) -> None:
    """A change to any of them recreates the service."""
    st = full_stack()
    web = st.service("web")
    changed = replace(web, **{field: getattr(ServiceSpec("web", "reg/app:v1"), field)})
    assert config_hash(st, changed) != config_hash(st, web)
    assert changed_fields(web, changed) == [field]


def test_new_network_and_mount_settings_are_hashed() -> None:
    st = full_stack()
    web = st.service("web")
    for changed in (replace(web, networks=(replace(web.networks[0], priority=0), *web.networks[1:])),
                    replace(web, mounts=(*web.mounts[:2], replace(web.mounts[2], bind_propagation=None),
                                         *web.mounts[3:]))):
        assert config_hash(st, changed) != config_hash(st, web)


def test_the_services_of_a_stored_stack_read_without_the_spec_model() -> None:
    """``status`` reads the service names and one-shot dependencies from the stored JSON directly:
    the same answer as building the spec."""
    stack = StackSpec("s", "s", "s/compose.yaml", services=(
        ServiceSpec("migrate", "app:v1"),
        ServiceSpec("web", "app:v1", depends_on=(Dependency("migrate", "service_completed_successfully"),
                                                 Dependency("db", "service_healthy"))),
        ServiceSpec("db", "db:v1"),
        ServiceSpec("spare", "app:v1", replicas=0),  # scaled to nothing: not expected to run
    ))
    text = stack_to_json(stack)
    spec = stack_from_json(text)
    names, one_shot = stack_services_from_json(text)
    assert names == tuple(s.name for s in spec.services if s.replicas > 0) == ("migrate", "web", "db")
    assert one_shot == ("migrate",)
    assert stack_services_from_json(stack_to_json(StackSpec("e", "e", "e/compose.yaml"))) == ((), ())
