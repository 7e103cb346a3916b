"""Unit tests of the pure Compose core: interpolation, dotenv, units, ports, graph, stack."""

from __future__ import annotations

from typing import Any

import pytest

from gitops_edge.core.compose import StackErrors, build_stack
from gitops_edge.core.compose.dotenv import DotenvError, parse_dotenv
from gitops_edge.core.compose.graph import find_cycle
from gitops_edge.core.compose.interpolate import InterpolationError, interpolate
from gitops_edge.core.compose.paths import PathEscapeError, host_path, repo_relative
from gitops_edge.core.compose.ports import PortError, parse_short_port
from gitops_edge.core.compose.problems import format_path, line_of
from gitops_edge.core.compose.units import parse_duration, parse_size
from gitops_edge.model.spec import PortMapping

ENV = {"SET": "v", "EMPTY": "", "TAG": "1.2"}


@pytest.mark.parametrize(("text", "want"), [
    ("plain", "plain"),
    ("$SET-$TAG", "v-1.2"),
    ("${SET}x", "vx"),
    ("${UNSET}", ""),
    ("${UNSET:-d}|${EMPTY:-d}|${SET:-d}", "d|d|v"),
    ("${UNSET-d}|${EMPTY-d}", "d|"),
    ("${SET:+a}|${EMPTY:+a}|${EMPTY+a}|${UNSET+a}", "a||a|"),
    ("${UNSET:-${ALSO:-${TAG}}}", "1.2"),
    ("${UNSET:-{json}}", "{json}"),
    ("$$SET $${SET}", "$SET ${SET}"),
    ("100%$", "100%$"),
    ("$1x", "$1x"),
    ("${SET?e}${SET:?e}", "vv"),
])
def test_interpolation(text: str, want: str) -> None:
    assert interpolate(text, ENV) == want


@pytest.mark.parametrize(("text", "message"), [
    ("${UNSET:?need it}", "required variable UNSET is missing a value: need it"),
    ("${EMPTY:?}", "required variable EMPTY is missing a value"),
    ("${UNSET?x}", "missing a value: x"),
    ("${}", "invalid interpolation format"),
    ("${A", "unclosed"),
    ("${A:x}", "invalid interpolation format"),
    ("${-x}", "invalid interpolation format"),
])
def test_interpolation_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message.replace("(", r"\(")):
        interpolate(text, ENV)


def test_dotenv_rules() -> None:
    text = (
        "# comment\n\nexport A=1\nB = spaced # comment\nC='lit $A # x'\n"
        'D="x ${A}\\ty\\n\\$A"\nE="multi\nline" # c\nF=a#b\nG\nH\n'
    )
    got = parse_dotenv(text, {"G": "from-lookup"})
    assert got == {"A": "1", "B": "spaced", "C": "lit $A # x", "D": "x 1\ty\n$A",
                   "E": "multi\nline", "F": "a#b", "G": "from-lookup"}


@pytest.mark.parametrize(("text", "line"), [("A=1\nB=\"open\n", 2), ("=x", 1), ("A 1", 1),
                                            ("A='x' junk", 1)])
def test_dotenv_errors_name_line(text: str, line: int) -> None:
    with pytest.raises(DotenvError) as info:
        parse_dotenv(text)
    assert info.value.line == line


@pytest.mark.parametrize(("text", "ns"), [("10s", 10 * 10**9), ("1m30s", 90 * 10**9),
                                          ("500ms", 5 * 10**8), ("1.5h", 5400 * 10**9),
                                          ("0", 0), ("2us", 2000)])
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "10", "1x", "s", "1m 30s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("value", "size"), [("512m", 512 << 20), ("1g", 1 << 30),
                                             ("100k", 102400), ("2MB", 2 << 20), (1000, 1000),
                                             ("1000", 1000), ("1.5g", 3 << 29)])
def test_sizes(value: str | int, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["lots", "-1", "1x", -5])
def test_bad_sizes(value: str | int) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


@pytest.mark.parametrize(("spec", "want"), [
    ("80", [PortMapping(80)]),
    ("8080:80", [PortMapping(80, "8080")]),
    ("127.0.0.1:53:53/udp", [PortMapping(53, "53", "127.0.0.1", "udp")]),
    ("[::1]:80:80", [PortMapping(80, "80", "::1")]),
    ("127.0.0.1::80", [PortMapping(80, None, "127.0.0.1")]),
    ("8000-8001:80-81", [PortMapping(80, "8000"), PortMapping(81, "8001")]),
    ("8000-8010:80", [PortMapping(80, "8000-8010")]),
    ("5000-5001", [PortMapping(5000), PortMapping(5001)]),
])
def test_short_ports(spec: str, want: list[PortMapping]) -> None:
    assert parse_short_port(spec) == want


@pytest.mark.parametrize("spec", ["80x", "70000", "80/icmp", "1-2:3-5", "0", "a:b:c:d"])
def test_bad_short_ports(spec: str) -> None:
    with pytest.raises(PortError):
        parse_short_port(spec)


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle({"x": [], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]


def test_paths() -> None:
    assert repo_relative("st/web", "./conf/../app.env") == "st/web/app.env"
    assert host_path("/co", "st/web", "./data") == "/co/st/web/data"
    assert host_path("/co", "st/web", "/dev/ttyUSB0") == "/dev/ttyUSB0"
    for bad in ("../../../x", "/abs.env"):
        with pytest.raises(PathEscapeError):
            repo_relative("st/web", bad)


def test_format_path_and_line_lookup() -> None:
    assert format_path(("services", "web", "ports", 0)) == "services.web.ports[0]"
    lines = {(): 1, ("services",): 1, ("services", "web"): 2}
    assert line_of(lines, ("services", "web", "ports", 3)) == 2


def build(doc: dict[str, Any], env: dict[str, str] | None = None,
          files: dict[str, str] | None = None) -> Any:
    return build_stack(doc, {(): 1}, name="st", stack_dir="stacks/st",
                       compose_file="stacks/st/compose.yaml", root="/co",
                       env=env or {}, read_text=lambda rel: (files or {}).get(rel))


def test_build_stack_normalizes() -> None:
    spec = build({
        "version": "3", "x-top": 1,
        "services": {
            "web": {"image": "nginx:${TAG}", "x-meta": {}, "command": "sh -c 'a b'",
                    "environment": ["A=1", "B"], "env_file": "web.env",
                    "volumes": ["./d:/d:ro", "vol:/v"], "labels": {"b": 2, "a": None},
                    "depends_on": ["db"], "stop_grace_period": "1m"},
            "db": {"image": "pg", "networks": {"back": {"aliases": ["d"]}}},
            "dbg": {"image": "x", "profiles": ["debug"]},
        },
        "volumes": {"vol": None},
        "networks": {"back": {}, "unused": {}},
    }, env={"TAG": "1", "B": "b"}, files={"stacks/st/web.env": "A=0\nC=3\n"})
    assert [s.name for s in spec.services] == ["db", "web"]
    web = spec.service("web")
    assert web.image == "nginx:1"
    assert web.command == ("sh", "-c", "a b")
    assert web.environment == (("A", "1"), ("B", "b"), ("C", "3"))
    assert web.mounts[0].source == "/co/stacks/st/d" and web.mounts[0].read_only
    assert web.mounts[1].source == "vol"
    assert web.labels == (("a", ""), ("b", "2"))
    assert web.stop_grace_period_ns == 60 * 10**9
    assert [n.network for n in web.networks] == ["default"]
    assert [(n.key, n.name) for n in spec.networks] == [("back", "st_back"),
                                                        ("default", "st_default")]
    assert [(v.key, v.name) for v in spec.volumes] == [("vol", "st_vol")]


def test_build_stack_collects_all_errors() -> None:
    with pytest.raises(StackErrors) as info:
        build({"services": {"a": {"image": 3, "bogus": 1}, "b": {"cpus": "many"}}})
    messages = sorted(e.message for e in info.value.errors)
    assert messages == ["'image' is required (gitops-edge does not build images)",
                        "must be a number, not 'many'", "must be a string, not a number",
                        "unknown key 'bogus'"]
    assert str(info.value) == str(info.value.errors[0])


def test_inactive_dependency_is_an_error() -> None:
    with pytest.raises(StackErrors, match="inactive"):
        build({"services": {"a": {"image": "x", "depends_on": ["b"]},
                            "b": {"image": "x", "profiles": ["p"]}}})
    spec = build({"services": {"a": {"image": "x",
                                     "depends_on": {"b": {"required": False}}},
                               "b": {"image": "x", "profiles": ["p"]}}})
    assert [s.name for s in spec.services] == ["a"]


def test_deploy_folds_into_limits_and_restart() -> None:
    web = build({"services": {"web": {"image": "x", "restart": "always", "mem_limit": "1g", "deploy": {
        "resources": {"limits": {"memory": "1g", "cpus": "0.5", "pids": 9},
                      "reservations": {"memory": "10m", "cpus": 0.1}},
        "restart_policy": {"condition": "on-failure", "max_attempts": 2, "delay": "5s"},
        "replicas": 1, "placement": {}, "labels": {"a": "b"}}}}}).service("web")
    assert (web.mem_limit, web.cpus, web.pids_limit, web.mem_reservation) == (1 << 30, 0.5, 9, 10 << 20)
    assert web.restart == "on-failure:2"
    assert build({"services": {"w": {"image": "x", "restart": "always", "deploy": {
        "restart_policy": {}}}}}).service("w").restart == "no"


@pytest.mark.parametrize(("extra", "deploy", "where"), [
    ({}, {"replicas": -1}, "deploy.replicas"),
    ({"scale": 3}, {"replicas": 2}, "scale"),
    ({}, {"mode": "global"}, "deploy.mode"),
    ({}, {"restart_policy": {"condition": "any", "max_attempts": 3}}, "deploy.restart_policy.max_attempts"),
    ({"mem_limit": "1g"}, {"resources": {"limits": {"memory": "2g"}}}, "deploy.resources.limits.memory"),
    ({"mem_limit": "1g"}, {"resources": {"limits": {"cpus": 1}}}, "mem_limit"),  # absent counts as 0
    ({"pids_limit": 5}, {"resources": {"limits": {"pids": 3}}}, "deploy.resources.limits.pids"),
    ({}, {"resources": {"reservations": {"generic_resources": []}}}, "deploy.resources.reservations.generic_resources"),
])
def test_deploy_refusals(extra: dict[str, Any], deploy: dict[str, Any], where: str) -> None:
    with pytest.raises(StackErrors) as exc:
        build({"services": {"web": {"image": "x", **extra, "deploy": deploy}}})
    assert exc.value.location.key == f"services.web.{where}"


@pytest.mark.parametrize(("svc", "want"), [
    ({}, 1),
    ({"deploy": {"replicas": 3}}, 3),
    ({"deploy": {"replicas": "0"}}, 0),
    ({"scale": 2}, 2),
    ({"scale": 2, "deploy": {"replicas": 2}}, 2),
])
def test_replicas_read_as_compose_reads_them(svc: dict[str, Any], want: int) -> None:
    assert build({"services": {"web": {"image": "x", **svc}}}).service("web").replicas == want


@pytest.mark.parametrize(("svc", "ok"), [
    ({"deploy": {"replicas": 2}}, False),
    ({"scale": 3}, False),
    ({"deploy": {"replicas": 1}}, True),
    ({"scale": 0}, True),
])
def test_container_name_allows_one_replica_at_most_as_compose(svc: dict[str, Any], ok: bool) -> None:
    doc = {"services": {"web": {"image": "x", "container_name": "fixed", **svc}}}
    if ok:
        assert build(doc).service("web").container_name == "fixed"
        return
    with pytest.raises(StackErrors) as exc:
        build(doc)
    assert exc.value.location.key == "services.web.container_name"
    assert "can't set container_name with" in str(exc.value)


def test_tilde_bind_is_under_the_agent_home() -> None:
    def load(source: str, home: str | None) -> Any:
        return build_stack({"services": {"a": {"image": "x", "volumes": [f"{source}:/d"]}}}, {(): 1},
                           name="st", stack_dir="stacks/st", compose_file="stacks/st/compose.yaml",
                           root="/co", env={}, read_text=lambda rel: None, home=home).service("a")
    assert load("~/data/../x", "/home/edge").mounts[0].source == "/home/edge/x"
    assert load("~", "/home/edge/").mounts[0].source == "/home/edge"
    assert load("~data", "/root").mounts[0].source == "/root/data"  # as compose-go: not ~user
    with pytest.raises(StackErrors) as exc:
        load("~/data", None)
    assert exc.value.location.key == "services.a.volumes[0]" and "home directory" in str(exc.value)


def test_implied_dependencies_and_sharing_references() -> None:
    spec = build({"services": {
        "a": {"image": "x", "network_mode": "service:n", "ipc": "service:i", "pid": "service:p",
              "volumes_from": ["v:ro", "container:c"], "depends_on": {"i": {"condition": "service_healthy"}}},
        "n": {"image": "x"}, "i": {"image": "x"}, "p": {"image": "x"}, "v": {"image": "x"},
    }})
    deps = {d.service: (d.condition, d.restart) for d in spec.service("a").depends_on}
    assert deps == {"i": ("service_healthy", False), "n": ("service_started", True),
                    "p": ("service_started", True), "v": ("service_started", False)}
    for bad, where in (({"ipc": "service:ghost"}, "ipc"), ({"pid": "private"}, "pid"),
                       ({"volumes_from": ["ghost"]}, "volumes_from[0]"), ({"expose": ["80/xyz"]}, "expose[0]")):
        with pytest.raises(StackErrors) as exc:
            build({"services": {"a": {"image": "x", **bad}}})
        assert exc.value.location.key == f"services.a.{where}"


def test_mount_paths_as_compose_cleans_them() -> None:
    web = build({"services": {"web": {"image": "x", "volumes": [
        "/etc/pihole/:/etc/pihole/", "./d:/x//y/./:z", "C:\\data:/win:ro",
        {"type": "bind", "source": "./d", "target": "/l/", "bind": {"selinux": "Z"}}]}}}).service("web")
    assert [(m.source, m.target, m.bind_selinux, m.read_only) for m in web.mounts] == [
        ("/etc/pihole/", "/etc/pihole", None, False), ("/co/stacks/st/d", "/x/y", "z", False),
        ("C:\\data", "/win", None, True), ("/co/stacks/st/d", "/l", "Z", False)]
    with pytest.raises(StackErrors, match="applies to bind mounts only"):
        build({"services": {"web": {"image": "x", "volumes": ["vol:/v:z"]}}, "volumes": {"vol": {}}})


def test_bind_volume_device_resolves_in_the_stack_like_compose() -> None:
    # (one-letter volume names would read as Windows drives, as in Compose)
    doc = {"services": {"web": {"image": "x", "volumes": ["a1:/a", "b1:/b", "c1:/c", "d1:/d"]}}, "volumes": {
        "a1": {"driver": "local", "driver_opts": {"device": "./data", "o": "bind"}},
        "b1": {"driver_opts": {"device": "./data", "o": "bind"}},  # no explicit driver: as written
        "c1": {"driver": "local", "driver_opts": {"device": "./data", "o": "bind,ro"}},
        "d1": {"driver": "local", "driver_opts": {"device": "", "o": "bind"}},
    }}
    devices = {v.key: dict(v.driver_opts)["device"] for v in build(doc).volumes}
    assert devices == {"a1": "/co/stacks/st/data", "b1": "./data", "c1": "./data", "d1": "/co/stacks/st"}
    doc["volumes"]["a1"]["driver_opts"]["device"] = "../../../etc"
    with pytest.raises(StackErrors) as exc:
        build(doc)
    assert exc.value.location.key == "volumes.a1.driver_opts.device"


def test_compose_profiles_enable_services() -> None:
    doc = {"services": {"web": {"image": "x"}, "dbg": {"image": "x", "profiles": ["debug"]},
                        "ops": {"image": "x", "profiles": ["ops", "tools"]}}}
    names = lambda env: [s.name for s in build(doc, env=env).services]  # noqa: E731
    assert names({}) == ["web"]
    assert names({"COMPOSE_PROFILES": "tools, debug"}) == ["dbg", "ops", "web"]
    assert names({"COMPOSE_PROFILES": "*"}) == ["dbg", "ops", "web"]


def test_build_beside_image_is_ignored_and_build_alone_refused() -> None:
    assert build({"services": {"w": {"image": "x", "build": {"context": "."}}}}).service("w").image == "x"
    with pytest.raises(StackErrors) as exc:
        build({"services": {"w": {"build": "."}}})
    assert exc.value.location.key == "services.w.build"


def test_network_ipam() -> None:
    net = build({"services": {"w": {"image": "x", "networks": ["n"]}}, "networks": {"n": {"ipam": {
        "driver": "default", "options": {"o": "1"},
        "config": [{"subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "aux_addresses": {"h": "10.0.0.5"}}],
    }}}}).networks[0]
    assert net.ipam is not None and net.ipam.driver == "default"
    assert [(c.subnet, c.ip_range, c.gateway, c.aux_addresses) for c in net.ipam.config] == [
        ("10.0.0.0/24", None, "10.0.0.1", (("h", "10.0.0.5"),))]


def test_kernel_and_resource_settings() -> None:
    web = build({"services": {"web": {
        "image": "x", "dns": "10.0.0.53", "group_add": ["mail", 42], "cpuset": 0, "memswap_limit": "-1",
        "gpus": "all", "attach": False, "pull_policy": "every_12h",
        "blkio_config": {"device_read_bps": [{"path": "/dev/sda", "rate": "1mb"}]},
        "deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["tpu"], "count": "all"}]}}},
    }}}).service("web")
    assert (web.dns, web.group_add, web.cpuset, web.memswap_limit, web.pull_policy) == (
        ("10.0.0.53",), ("mail", "42"), "0", -1, "every_12h")
    assert web.blkio is not None and web.blkio.device_read_bps == (("/dev/sda", 1 << 20),)
    assert [(r.count, r.capabilities) for r in web.device_requests] == [(-1, ("tpu",)), (-1, ("gpu",))]


@pytest.mark.parametrize(("key", "value"), [
    ("uts", "private"), ("cgroup", "shared"), ("oom_score_adj", 2000), ("mem_swappiness", 101),
    ("pull_policy", "build"), ("pull_policy", "every_fortnight"), ("gpus", "some"),
])
def test_kernel_setting_refusals(key: str, value: object) -> None:
    with pytest.raises(StackErrors) as exc:
        build({"services": {"web": {"image": "x", key: value}}})
    assert exc.value.location.key == f"services.web.{key}"


def build_with_secrets(doc: dict[str, Any], secrets: dict[str, str] | None) -> Any:
    lookup = None if secrets is None else secrets.get
    return build_stack(doc, {(): 1}, name="st", stack_dir="stacks/st", compose_file="stacks/st/compose.yaml",
                       root="/co", env={"V": "from-env"}, read_text=lambda rel: None, secret_file=lookup)


FILES_DOC: dict[str, Any] = {
    "services": {"web": {"image": "x", "configs": ["plain", {"source": "inline", "target": "etc/i.conf",
                                                              "mode": "0440", "uid": 1000}, "env"],
                         "secrets": ["pw", {"source": "pw", "target": "/etc/pw"}]}},
    "configs": {"plain": {"file": "./plain.txt"}, "inline": {"content": "k=1\n"}, "env": {"environment": "V"}},
    "secrets": {"pw": {"file": "./in-git-but-never-read.txt"}},
}


def test_configs_mount_or_inject_and_secrets_come_from_the_device() -> None:
    web = build_with_secrets(FILES_DOC, {"pw": "/etc/edge/secrets/pw"}).service("web")
    assert [(m.target, m.source, m.read_only, m.origin) for m in web.mounts] == [
        ("/plain", "/co/stacks/st/plain.txt", True, "config"),
        ("/run/secrets/pw", "/etc/edge/secrets/pw", True, "secret"),
        ("/etc/pw", "/etc/edge/secrets/pw", True, "secret")]
    assert [(f.target, f.content, f.uid, f.mode) for f in web.files] == [
        ("/etc/i.conf", "k=1\n", "1000", 0o440), ("/env", "from-env", "0", 0o444)]


@pytest.mark.parametrize(("secrets", "phrase"), [
    ({}, "secret 'pw' is not on this device"),
    (None, "this device has no secrets directory"),
])
def test_a_secret_missing_on_the_device_is_located(secrets: dict[str, str] | None, phrase: str) -> None:
    with pytest.raises(StackErrors) as exc:
        build_with_secrets(FILES_DOC, secrets)
    assert phrase in exc.value.message and exc.value.location.key == "services.web.secrets[0]"


@pytest.mark.parametrize(("doc", "where"), [
    ({"services": {"w": {"image": "x", "configs": ["ghost"]}}}, "services.w.configs[0]"),
    ({"services": {"w": {"image": "x"}}, "configs": {"c": {"external": True}}}, "configs.c"),
    ({"services": {"w": {"image": "x"}}, "configs": {"c": {"file": "../../../etc/passwd"}}}, "configs.c.file"),
    ({"services": {"w": {"image": "x"}}, "secrets": {"../x": {"file": "f"}}}, "secrets.../x"),
])
def test_config_and_secret_refusals(doc: dict[str, Any], where: str) -> None:
    with pytest.raises(StackErrors) as exc:
        build_with_secrets(doc, {})
    assert exc.value.location.key.startswith(where)


def test_links_imply_a_restarting_dependency() -> None:
    spec = build({"services": {"web": {"image": "x", "links": ["db:database"]}, "db": {"image": "x"}}})
    assert [(d.service, d.restart) for d in spec.service("web").depends_on] == [("db", True)]
    with pytest.raises(StackErrors) as exc:
        build({"services": {"web": {"image": "x", "links": ["ghost"]}}})
    assert exc.value.location.key == "services.web.links[0]"


def test_bind_propagation_short_and_long() -> None:
    web = build({"services": {"web": {"image": "x", "volumes": [
        "./d:/a:rslave,ro", {"type": "bind", "source": "./d", "target": "/b", "bind": {"propagation": "shared"}}]}}}
                ).service("web")
    assert [(m.bind_propagation, m.read_only) for m in web.mounts] == [("rslave", True), ("shared", False)]
    with pytest.raises(StackErrors, match="invalid propagation"):
        build({"services": {"web": {"image": "x", "volumes": [
            {"type": "bind", "source": "./d", "target": "/b", "bind": {"propagation": "sideways"}}]}}})


def test_one_letter_volume_names_read_as_windows_drives_are_refused_clearly() -> None:
    for spec in ("d:/data", "e:/data:ro"):
        with pytest.raises(StackErrors, match="Windows drive"):
            build({"services": {"w": {"image": "x", "volumes": [spec]}}, "volumes": {"d": {}, "e": {}}})
