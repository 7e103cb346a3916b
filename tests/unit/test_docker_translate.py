"""ServiceSpec -> Docker Engine create body, without Docker (Compose v2 semantics)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gitops_edge.adapters.docker import translate as t
from gitops_edge.model.spec import (
    Dependency,
    Healthcheck,
    Logging,
    Mount,
    NetworkAttachment,
    NetworkSpec,
    PortMapping,
    ServiceSpec,
    StackSpec,
    Ulimit,
    VolumeSpec,
)

STACK = StackSpec(
    name="demo",
    path="stacks/demo",
    compose_file="stacks/demo/compose.yaml",
    networks=(
        NetworkSpec("default", "demo_default"),
        NetworkSpec("front", "demo_front"),
        NetworkSpec("back", "shared-back", external=True),
    ),
    volumes=(VolumeSpec("data", "demo_data"), VolumeSpec("ext", "outside", external=True)),
)


def create(spec: ServiceSpec, **kw: object) -> t.ContainerCreate:
    args: dict[str, object] = {
        "image": "reg/app@sha256:abc",
        "image_id": "sha256:1d",
        "config_hash": "h1",
        "revision": "r1",
    }
    args.update(kw)
    return t.container_create_args(STACK, spec, **args)  # type: ignore[arg-type]


def test_minimal_service_joins_default_network_with_compose_aliases() -> None:
    req = create(ServiceSpec(name="web", image="reg/app:v1"))
    assert req.name == "demo-web-1"
    assert req.body["Image"] == "reg/app@sha256:abc"
    assert req.body["Cmd"] is None and req.body["Entrypoint"] is None
    assert req.body["HostConfig"]["NetworkMode"] == "demo_default"
    assert req.body["NetworkingConfig"] == {
        "EndpointsConfig": {"demo_default": {"Aliases": ["demo-web-1", "web"]}}
    }
    assert req.body["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert req.connect == ()


def test_labels_compose_and_ours_win_over_user_labels() -> None:
    spec = ServiceSpec(
        name="web",
        image="reg/app:v1",
        labels=(("com.docker.compose.project", "evil"), ("team", "edge")),
        depends_on=(Dependency("db", "service_healthy", restart=True), Dependency("cache")),
    )
    labels = create(spec).body["Labels"]
    assert labels == {
        "team": "edge",
        "com.docker.compose.project": "demo",
        "com.docker.compose.service": "web",
        "com.docker.compose.container-number": "1",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.config-hash": "h1",
        "com.docker.compose.depends_on": "cache:service_started:false,db:service_healthy:true",
        "com.docker.compose.image": "sha256:1d",
        "com.docker.compose.version": t.COMPOSE_VERSION,
        "io.gitops-edge.image": "reg/app@sha256:abc",
        "io.gitops-edge.config-hash": "h1",
        "io.gitops-edge.revision": "r1",
    }


def test_name_override_and_container_name() -> None:
    assert create(ServiceSpec(name="web", image="x", container_name="my-web")).name == "my-web"
    renamed = create(ServiceSpec(name="web", image="x"), name="demo-web-1-new")
    assert renamed.name == "demo-web-1-new"
    aliases = renamed.body["NetworkingConfig"]["EndpointsConfig"]["demo_default"]["Aliases"]
    assert aliases[0] == "demo-web-1-new"


def test_networks_primary_by_key_others_connected_later() -> None:
    spec = ServiceSpec(
        name="web",
        image="x",
        networks=(
            NetworkAttachment("front", aliases=("www",), ipv4_address="172.30.0.5"),
            NetworkAttachment("back"),
        ),
    )
    req = create(spec)
    assert req.body["HostConfig"]["NetworkMode"] == "shared-back"
    assert req.body["NetworkingConfig"]["EndpointsConfig"] == {
        "shared-back": {"Aliases": ["demo-web-1", "web"]}
    }
    assert req.connect == (
        t.Endpoint("demo_front", ("demo-web-1", "web", "www"), "172.30.0.5"),
    )
    assert req.connect[0].settings() == {
        "Aliases": ["demo-web-1", "web", "www"],
        "IPAMConfig": {"IPv4Address": "172.30.0.5"},
    }


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("host", "host"), ("none", "none"), ("container:abc", "container:abc"), ("service:db", "container:c1d")],
)
def test_network_modes(mode: str, expected: str) -> None:
    req = create(ServiceSpec(name="web", image="x", network_mode=mode), network_mode_container="c1d")
    assert req.body["HostConfig"]["NetworkMode"] == expected
    assert "NetworkingConfig" not in req.body
    assert req.connect == ()


def test_service_network_mode_needs_the_container() -> None:
    with pytest.raises(ValueError, match="service:db"):
        create(ServiceSpec(name="web", image="x", network_mode="service:db"))


def test_ports_short_long_ranges_udp_ephemeral() -> None:
    spec = ServiceSpec(
        name="web",
        image="x",
        ports=(
            PortMapping(8080, "18080", "127.0.0.1"),
            PortMapping(53, "5353", None, "udp"),
            PortMapping(80, "8000-8010"),
            PortMapping(9999),
            PortMapping(8080, "18081", "127.0.0.2"),
        ),
    )
    body = create(spec).body
    assert body["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}, "80/tcp": {}, "9999/tcp": {}}
    assert body["HostConfig"]["PortBindings"] == {
        "8080/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": "18080"},
            {"HostIp": "127.0.0.2", "HostPort": "18081"},
        ],
        "53/udp": [{"HostIp": "", "HostPort": "5353"}],
        "80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}],
        "9999/tcp": [{"HostIp": "", "HostPort": ""}],
    }


def test_mounts_binds_like_compose() -> None:
    spec = ServiceSpec(
        name="web",
        image="x",
        mounts=(
            Mount("volume", "/data", "data"),
            Mount("volume", "/ext", "ext", read_only=True),
            Mount("bind", "/cfg", "/srv/cfg", read_only=True),
            Mount("bind", "/strict", "/srv/strict", bind_create_host_path=False),
            Mount("tmpfs", "/cache", tmpfs_size=1048576),
            Mount("volume", "/anon"),
        ),
    )
    host = create(spec).body["HostConfig"]
    assert host["Binds"] == ["demo_data:/data:rw", "outside:/ext:ro", "/srv/cfg:/cfg:ro"]
    assert host["Mounts"] == [
        {"Type": "bind", "Source": "/srv/strict", "Target": "/strict", "ReadOnly": False},
        {"Type": "tmpfs", "Target": "/cache", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 1048576}},
        {"Type": "volume", "Target": "/anon", "ReadOnly": False},
    ]


def test_every_other_field() -> None:
    spec = ServiceSpec(
        name="web",
        image="x",
        command=("httpd", "-f"),
        entrypoint=("/bin/sh", "-c"),
        environment=(("A", "1"), ("EMPTY", ""), ("UNSET", None)),
        healthcheck=Healthcheck(("CMD", "true"), 2_000_000_000, 3_000_000_000, 4, 5_000_000_000),
        restart="on-failure:3",
        user="nobody",
        working_dir="/www",
        read_only=True,
        cap_add=("NET_ADMIN", "cap_sys_time", "ALL"),
        cap_drop=("MKNOD",),
        devices=("/dev/null", "/dev/zero:/dev/z", "/dev/full:/dev/f:r"),
        privileged=True,
        security_opt=("no-new-privileges:true",),
        logging=Logging("json-file", (("max-size", "1m"),)),
        mem_limit=67108864,
        cpus=0.5,
        stop_grace_period_ns=7_500_000_000,
        stop_signal="SIGINT",
        hostname="webhost",
        extra_hosts=("myhost:10.0.0.5",),
        ulimits=(Ulimit("nofile", 1024, 2048),),
        sysctls=(("net.core.somaxconn", "1024"),),
        init=True,
        tty=True,
        stdin_open=True,
    )
    body = create(spec).body
    host = body["HostConfig"]
    assert body["Cmd"] == ["httpd", "-f"]
    assert body["Entrypoint"] == ["/bin/sh", "-c"]
    assert body["Env"] == ["A=1", "EMPTY=", "UNSET"]
    assert body["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 2_000_000_000,
        "Timeout": 3_000_000_000,
        "StartPeriod": 5_000_000_000,
        "Retries": 4,
    }
    assert (body["User"], body["WorkingDir"], body["Hostname"]) == ("nobody", "/www", "webhost")
    assert (body["StopSignal"], body["StopTimeout"]) == ("SIGINT", 7)
    assert (body["Tty"], body["OpenStdin"], body["AttachStdin"]) == (True, True, False)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is True and host["Init"] is True
    assert host["CapAdd"] == ["CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"]
    assert host["CapDrop"] == ["CAP_MKNOD"]
    assert host["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/full", "PathInContainer": "/dev/f", "CgroupPermissions": "r"},
    ]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert (host["Memory"], host["NanoCpus"]) == (67108864, 500_000_000)
    assert host["ExtraHosts"] == ["myhost:10.0.0.5"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}


def test_healthcheck_disable_is_none() -> None:
    spec = ServiceSpec(name="w", image="x", healthcheck=Healthcheck((), disable=True))
    assert create(spec).body["Healthcheck"] == {"Test": ["NONE"]}


def test_unset_fields_leave_image_defaults() -> None:
    body = create(ServiceSpec(name="w", image="x")).body
    for key in ("Healthcheck", "User", "WorkingDir", "StopSignal", "StopTimeout", "Hostname"):
        assert key not in body
    assert "Init" not in body["HostConfig"] and "LogConfig" not in body["HostConfig"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("no", {"Name": "no", "MaximumRetryCount": 0}),
        ("always", {"Name": "always", "MaximumRetryCount": 0}),
        ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
    ],
)
def test_restart_policy(policy: str, expected: dict[str, object]) -> None:
    assert t.restart_policy(policy) == expected


def test_restart_policy_rejects_unknown() -> None:
    with pytest.raises(ValueError):
        t.restart_policy("sometimes")


def test_network_and_volume_create_carry_compose_labels() -> None:
    net = NetworkSpec("front", "demo_front", driver_opts=(("mtu", "1400"),), internal=True, labels=(("a", "b"),))
    assert t.network_create_args("demo", net) == {
        "name": "demo_front",
        "driver": "bridge",
        "options": {"mtu": "1400"},
        "internal": True,
        "labels": {
            "a": "b",
            "com.docker.compose.project": "demo",
            "com.docker.compose.network": "front",
            "com.docker.compose.version": t.COMPOSE_VERSION,
        },
        "check_duplicate": True,
    }
    vol = t.volume_create_args("demo", VolumeSpec("data", "demo_data"))
    assert vol["name"] == "demo_data" and vol["driver"] == "local"
    assert vol["labels"]["com.docker.compose.volume"] == "data"
    assert vol["labels"]["com.docker.compose.project"] == "demo"


def test_sharing_modes_resolve_to_container_ids_and_keep_volumes_from_modes() -> None:
    spec = ServiceSpec(name="app", image="x", ipc="service:holder", pid="host", network_mode="service:net",
                       volumes_from=("holder:ro", "container:other:rw", "net"))
    assert t.referenced_services(spec) == ("holder", "net")
    req = create(spec, service_containers={"holder": "h1d", "net": "n1d"})
    host = req.body["HostConfig"]
    assert (host["IpcMode"], host["PidMode"], host["NetworkMode"]) == ("container:h1d", "host", "container:n1d")
    assert host["VolumesFrom"] == ["h1d:ro", "other:rw", "n1d"]
    with pytest.raises(ValueError, match="'holder' needs the id"):
        create(spec, service_containers={"net": "n1d"})


def test_resources_expose_selinux_and_platform() -> None:
    spec = ServiceSpec(
        name="app", image="x", expose=("80", "9000-9001/udp"), ports=(PortMapping(8080, "18080"),),
        shm_size=1 << 20, runtime="runc", pids_limit=7, mem_reservation=1 << 23, platform="linux/arm64",
        mounts=(Mount("bind", "/a", "/src", bind_selinux="z"),
                Mount("bind", "/b", "/src", read_only=True, bind_create_host_path=False, bind_selinux="Z")),
    )
    req = create(spec)
    host = req.body["HostConfig"]
    assert sorted(req.body["ExposedPorts"]) == ["80", "8080/tcp", "9000-9001/udp"]
    assert (host["ShmSize"], host["Runtime"], host["PidsLimit"], host["MemoryReservation"]) == (
        1 << 20, "runc", 7, 1 << 23)
    assert host["Binds"] == ["/src:/a:rw,z"]
    assert host["Mounts"] == [{"Type": "bind", "Source": "/src", "Target": "/b", "ReadOnly": True, "BindOptions": {}}]
    assert req.platform == "linux/arm64"
    assert "IpcMode" not in create(ServiceSpec(name="w", image="x")).body["HostConfig"]


def test_network_ipam_body() -> None:
    from gitops_edge.model.spec import Ipam, IpamPool

    net = NetworkSpec("pool", "demo_pool", ipam=Ipam(None, (IpamPool("10.1.0.0/24", None, "10.1.0.1",
                                                                     (("spare", "10.1.0.2"),)),)))
    assert t.network_create_args("demo", net)["ipam"] == {
        "Driver": "default", "Options": None,
        "Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1", "AuxiliaryAddresses": {"spare": "10.1.0.2"}}],
    }
    assert "ipam" not in t.network_create_args("demo", NetworkSpec("n", "demo_n"))


def test_kernel_settings_and_device_requests() -> None:
    from gitops_edge.model.spec import Blkio, DeviceRequest

    spec = ServiceSpec(name="w", image="x", uts="host", dns=("10.0.0.53",), memswap_limit=-1, oom_kill_disable=True,
                       domainname="lan", blkio=Blkio(300, (("/dev/sda", 400),)),
                       device_requests=(DeviceRequest("nvidia", 0, ("3",), ("utility", "gpu")),))
    req = create(spec)
    host = req.body["HostConfig"]
    assert (host["UTSMode"], host["Dns"], host["MemorySwap"], host["OomKillDisable"]) == (
        "host", ["10.0.0.53"], -1, True)
    assert (host["BlkioWeight"], host["BlkioWeightDevice"]) == (300, [{"Path": "/dev/sda", "Weight": 400}])
    assert host["DeviceRequests"] == [{"Driver": "nvidia", "Count": 0, "DeviceIDs": ["3"],
                                       "Capabilities": [["utility", "gpu"]], "Options": None}]
    assert req.body["Domainname"] == "lan"
    plain = create(ServiceSpec(name="p", image="x")).body["HostConfig"]
    assert plain["OomKillDisable"] is False and "UTSMode" not in plain and "DeviceRequests" not in plain


def test_service_tmpfs_goes_to_hostconfig_tmpfs_as_written() -> None:
    spec = ServiceSpec(name="w", image="x", mounts=(
        Mount("tmpfs", "/run", tmpfs_options=""),
        Mount("tmpfs", "/t", tmpfs_size=1 << 20, tmpfs_options="size=1m,mode=1770"),
        Mount("tmpfs", "/long", tmpfs_size=1 << 20, tmpfs_mode=0o1777)))
    host = create(spec).body["HostConfig"]
    assert host["Tmpfs"] == {"/run": "", "/t": "size=1m,mode=1770"}
    assert host["Mounts"] == [{"Type": "tmpfs", "Target": "/long", "ReadOnly": False,
                               "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}}]


def test_links_become_endpoint_links_on_every_network_in_compose_order() -> None:
    stack = StackSpec(name="demo", path="s", compose_file="s/compose.yaml",
                      services=(ServiceSpec(name="db", image="x", container_name="the-db"),),
                      networks=(NetworkSpec("default", "demo_default"),))
    spec = ServiceSpec(name="web", image="x", links=("db", "db:database"), networks=(NetworkAttachment("default"),))
    req = t.container_create_args(stack, spec, image="x", image_id="i", config_hash="h", revision="r")
    assert req.body["NetworkingConfig"]["EndpointsConfig"]["demo_default"]["Links"] == [
        "the-db:db", "the-db:db-1", "the-db:the-db", "the-db:database", "the-db:db-1", "the-db:the-db"]


def test_a_replica_is_named_numbered_and_links_every_replica_as_compose() -> None:
    db = ServiceSpec(name="db", image="x", replicas=2, networks=(NetworkAttachment("default"),))
    web = ServiceSpec(name="web", image="x", links=("db:d",), replicas=3, networks=(NetworkAttachment("default"),))
    stack = StackSpec(name="demo", path="s", compose_file="s/compose.yaml", services=(db, web),
                      networks=(NetworkSpec("default", "demo_default"),))
    req = t.container_create_args(stack, web, image="x", image_id="i", config_hash="h", revision="r", number=3)
    assert req.name == "demo-web-3"
    assert req.body["Labels"][t.NUMBER] == "3"
    endpoint = req.body["NetworkingConfig"]["EndpointsConfig"]["demo_default"]
    assert endpoint["Aliases"] == ["demo-web-3", "web"]
    assert endpoint["Links"] == [  # each replica of db, newest first, under this container's number
        "demo-db-2:d", "demo-db-2:db-3", "demo-db-2:demo-db-3", "demo-db-1:d", "demo-db-1:db-3", "demo-db-1:demo-db-3"]
    none = StackSpec(name="demo", path="s", compose_file="s/compose.yaml",
                     services=(replace(db, replicas=0), web), networks=stack.networks)
    req = t.container_create_args(none, web, image="x", image_id="i", config_hash="h", revision="r")
    assert "Links" not in req.body["NetworkingConfig"]["EndpointsConfig"]["demo_default"]  # 0 replicas: none
