"""One Compose service: validate its keys and normalize it to ServiceSpec."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops_edge.core.compose.configs import Declared, service_files
from gitops_edge.core.compose.deploy import apply_deploy
from gitops_edge.core.compose.dotenv import DotenvError, parse_dotenv, parse_raw_env
from gitops_edge.core.compose.fields import (
    as_bool,
    as_dict_or_list,
    as_duration,
    as_float,
    as_int,
    as_mapping,
    as_size,
    as_str,
    as_str_list,
    check_keys,
    is_scalar,
    scalar_text,
    type_name,
)
from gitops_edge.core.compose.hooks import parse_hooks
from gitops_edge.core.compose.mounts import MountContext, parse_tmpfs, parse_volumes
from gitops_edge.core.compose.paths import PathEscapeError, repo_relative
from gitops_edge.core.compose.ports import parse_ports
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.core.compose.relations import depends_on, implied_dependencies, networking, shared_namespaces
from gitops_edge.core.compose.shellwords import split_words
from gitops_edge.core.compose.tuning import TUNING_KEYS, apply_tuning
from gitops_edge.core.compose.units import parse_duration
from gitops_edge.errors import DesiredStateError, Location
from gitops_edge.model.spec import (
    Healthcheck,
    Logging,
    ServiceSpec,
    Ulimit,
)

ReadText = Callable[[str], "str | None"]
"""Reads a repo-relative file; ``None`` when it does not exist."""

SERVICE_KEYS = frozenset({
    "image", "command", "entrypoint", "environment", "env_file", "ports", "volumes", "tmpfs",
    "networks", "network_mode", "depends_on", "healthcheck", "restart", "labels", "user",
    "working_dir", "read_only", "cap_add", "cap_drop", "devices", "privileged", "security_opt",
    "logging", "mem_limit", "cpus", "stop_grace_period", "stop_signal", "container_name",
    "hostname", "extra_hosts", "ulimits", "sysctls", "init", "profiles", "pull_policy", "tty",
    "stdin_open", "build", "expose", "shm_size", "platform", "runtime", "volumes_from", "ipc", "pid",
    "pids_limit", "mem_reservation", "deploy", "configs", "secrets", "links", "label_file", "scale",
    "external_links", "post_start", "pre_stop", "pull_refresh_after",
    "develop", *TUNING_KEYS,
})
UNSUPPORTED_REASONS = {
    "credential_spec": "Windows containers only",
    "provider": "it runs a provider plugin on the device",
    "use_api_socket": "it hands the container the Docker socket, which owns the device",
    "models": "it needs Docker Model Runner",
    "stop_grace_period_ns": "not a Compose key", "healthcheck_ns": "not a Compose key",
    "mem_limit_ns": "not a Compose key",
}
UNSUPPORTED_SERVICE_KEYS = frozenset(UNSUPPORTED_REASONS)
_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
_PULL = {"always": "always", "missing": "missing", "if_not_present": "missing", "never": "never"}
_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_HEALTH_KEYS = ("test", "interval", "timeout", "retries", "start_period", "disable")
_EXPOSE = re.compile(r"^\d+(-\d+)?(/(tcp|udp|sctp))?$")


@dataclass(frozen=True)
class ServiceContext:
    mounts: MountContext
    env: Mapping[str, str]  # interpolation variables (.env, explicit environ)
    read_text: ReadText
    networks: Collection[str]  # declared top-level network keys (plus implicit default)
    services: Collection[str]  # every service name in the file
    declared: Declared = field(default_factory=lambda: Declared({}, {}))  # top-level configs and secrets


def build_service(
    p: Problems, name: str, raw: object, ctx: ServiceContext
) -> ServiceSpec | None:
    """Validate and normalize ``services.<name>``; ``None`` if it has errors."""
    path: KeyPath = ("services", name)
    before = len(p.errors)
    svc = as_mapping(p, path, raw)
    if svc is None:
        return None
    check_keys(p, path, svc, SERVICE_KEYS, UNSUPPORTED_REASONS)
    kw: dict[str, Any] = {}

    def at(key: str) -> KeyPath:
        return (*path, key)

    image = svc.get("image")
    if image is None and "build" in svc:
        p.add(at("build"), "the service only builds its image, and gitops-edge does not build "
                           "images: add 'image:' naming the pushed image")
    elif image is None:
        p.add(path, "'image' is required (gitops-edge does not build images)")
    elif (img := as_str(p, at("image"), image)) is not None:
        if not img or any(c.isspace() for c in img):
            p.add(at("image"), f"invalid image reference {img!r}")
        kw["image"] = img
    if "build" in svc and not isinstance(svc["build"], str | dict):
        p.add(at("build"), f"must be a string or a mapping, not a {type_name(svc['build'])}")
    for key in ("command", "entrypoint"):
        if key in svc:
            kw[key] = _command(p, at(key), svc[key])
    env = _environment(p, path, svc, ctx)
    kw["environment"] = tuple(sorted(env.items()))
    if "ports" in svc:
        kw["ports"] = parse_ports(p, at("ports"), svc["ports"])
    mounts = []
    if "volumes" in svc:
        mounts += parse_volumes(p, at("volumes"), svc["volumes"], ctx.mounts)
    if "tmpfs" in svc:
        mounts += parse_tmpfs(p, at("tmpfs"), svc["tmpfs"])
    file_mounts, files = service_files(p, path, svc, ctx.declared)
    kw["mounts"] = (*mounts, *file_mounts)
    kw["files"] = tuple(files)
    kw.update(networking(p, path, svc, ctx.services, ctx.networks))
    if "depends_on" in svc:
        kw["depends_on"] = depends_on(p, at("depends_on"), svc["depends_on"], name, ctx.services)
    if "healthcheck" in svc:
        kw["healthcheck"] = _healthcheck(p, at("healthcheck"), svc["healthcheck"])
    if "restart" in svc and (restart := as_str(p, at("restart"), svc["restart"])) is not None:
        if not _RESTART.match(restart):
            p.add(at("restart"), f"invalid restart policy {restart!r}")
        kw["restart"] = restart
    for key in ("labels", "sysctls"):
        if key in svc and (pairs := as_dict_or_list(p, at(key), svc[key])) is not None:
            kw[key] = tuple(sorted((k, v or "") for k, v in pairs.items()))
    if svc.get("label_file") is not None:
        from_files = _label_files(p, at("label_file"), svc["label_file"], ctx)
        kw["labels"] = tuple(sorted({**from_files, **dict(kw.get("labels", ()))}.items()))
    if svc.get("pull_refresh_after") is not None:  # in Compose 2.40's schema, dropped by its loader
        as_str(p, at("pull_refresh_after"), svc["pull_refresh_after"])
    if svc.get("develop") is not None:
        as_mapping(p, at("develop"), svc["develop"])  # `docker compose watch` only: no effect on `up`
    for key in ("user", "working_dir", "stop_signal", "hostname"):
        if key in svc and svc[key] is not None:
            kw[key] = as_str(p, at(key), svc[key])
    if "container_name" in svc:
        cname = as_str(p, at("container_name"), svc["container_name"])
        if cname is not None and not _CONTAINER_NAME.match(cname):
            p.add(at("container_name"), f"invalid container name {cname!r}")
        kw["container_name"] = cname
    for key in ("read_only", "privileged", "tty", "stdin_open", "init"):
        if key in svc and svc[key] is not None:
            kw[key] = as_bool(p, at(key), svc[key])
    for key in ("cap_add", "cap_drop", "security_opt", "profiles"):
        if key in svc:
            kw[key] = as_str_list(p, at(key), svc[key]) or ()
    if "devices" in svc:
        kw["devices"] = _devices(p, at("devices"), svc["devices"])
    if "logging" in svc:
        kw["logging"] = _logging(p, at("logging"), svc["logging"])
    if "mem_limit" in svc:
        kw["mem_limit"] = as_size(p, at("mem_limit"), svc["mem_limit"])
    if "cpus" in svc:
        kw["cpus"] = as_float(p, at("cpus"), svc["cpus"])
    if "stop_grace_period" in svc:
        kw["stop_grace_period_ns"] = as_duration(p, at("stop_grace_period"),
                                                 svc["stop_grace_period"])
    if "extra_hosts" in svc:
        kw["extra_hosts"] = _extra_hosts(p, at("extra_hosts"), svc["extra_hosts"])
    if "ulimits" in svc:
        kw["ulimits"] = _ulimits(p, at("ulimits"), svc["ulimits"])
    if "expose" in svc:
        kw["expose"] = as_str_list(p, at("expose"), svc["expose"]) or ()
        for i, item in enumerate(kw["expose"]):
            if not _EXPOSE.match(item):
                p.add((*at("expose"), i), f"invalid port {item!r} (use e.g. '80' or '8000-8010/udp')")
    for key in ("shm_size", "mem_reservation"):
        if svc.get(key) is not None:
            kw[key] = as_size(p, at(key), svc[key])
    if svc.get("pids_limit") is not None:
        kw["pids_limit"] = as_int(p, at("pids_limit"), svc["pids_limit"])
    for key in ("platform", "runtime"):
        if svc.get(key) is not None:
            kw[key] = as_str(p, at(key), svc[key])
    kw.update(shared_namespaces(p, path, svc, ctx.services))
    apply_tuning(p, path, svc, kw)
    if svc.get("deploy") is not None:
        apply_deploy(p, at("deploy"), svc["deploy"], kw)
    if svc.get("scale") is not None and (scale := as_int(p, at("scale"), svc["scale"], minimum=0)) is not None:
        if kw.get("replicas", scale) != scale:
            p.add(at("scale"), "can't set distinct values on 'scale' and 'deploy.replicas'")
        kw["replicas"] = scale
    if kw.get("container_name") and kw.get("replicas", 1) > 1:  # Compose refuses it too
        p.add(at("container_name"), f"can't set container_name with {kw['replicas']} replicas: "
              "a container name must be unique")
    for key in ("post_start", "pre_stop"):
        if key in svc:
            kw[key] = parse_hooks(p, at(key), svc[key])
    if "pull_policy" in svc and (pull := as_str(p, at("pull_policy"), svc["pull_policy"])):
        kw["pull_policy"] = _pull_policy(p, at("pull_policy"), pull)
    if len(p.errors) != before:
        return None
    kw["depends_on"] = implied_dependencies(kw)
    return ServiceSpec(name=name, **kw)


def _pull_policy(p: Problems, path: KeyPath, pull: str) -> str:
    """``always | missing | never`` (``if_not_present`` is ``missing``); refresh policies as written.

    ``daily``, ``weekly`` and ``every_<duration>`` are kept for the runtime,
    which treats them as ``missing``; ``build`` is refused: nothing is built here.
    """
    if pull in _PULL:
        return _PULL[pull]
    if pull in ("daily", "weekly"):
        return pull
    if pull.startswith("every_"):
        try:
            parse_duration(pull.removeprefix("every_"))
        except ValueError:
            p.add(path, f"invalid pull_policy {pull!r} (use e.g. every_12h)")
        return pull
    if pull == "build":
        p.add(path, "pull_policy: build needs a build, and gitops-edge does not build images")
    else:
        p.add(path, f"pull_policy must be one of {', '.join(_PULL)}, daily, weekly or every_<duration>")
    return "missing"


def _command(p: Problems, path: KeyPath, value: object) -> tuple[str, ...] | None:
    """String form is shell-split, as Compose does; a list is taken as is."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(split_words(value))
        except ValueError as exc:
            p.add(path, f"cannot split command: {exc}")
            return None
    return as_str_list(p, path, value)


def _environment(
    p: Problems, path: KeyPath, svc: Mapping[str, Any], ctx: ServiceContext
) -> dict[str, str | None]:
    """env_file entries first, ``environment`` on top; bare names come from ``ctx.env``."""
    result: dict[str, str | None] = {}
    if "env_file" in svc:
        for rel, required, raw_format, where in _env_files(p, (*path, "env_file"), svc["env_file"], ctx):
            text = ctx.read_text(rel)
            if text is None:
                if required:
                    p.add(where, f"env file {rel!r} not found")
                continue
            try:
                result.update(parse_raw_env(text) if raw_format else parse_dotenv(text, ctx.env))
            except DotenvError as exc:
                p.extend([DesiredStateError(str(exc), Location(rel, exc.line))])
    if "environment" in svc:
        entries = as_dict_or_list(p, (*path, "environment"), svc["environment"])
        for key, value in (entries or {}).items():
            result[key] = value if value is not None else ctx.env.get(key)
    return result


def _label_files(p: Problems, path: KeyPath, value: object, ctx: ServiceContext) -> dict[str, str]:
    """``label_file``: dotenv-format files of the repository, under the service's ``labels``."""
    out: dict[str, str] = {}
    for i, raw in enumerate([value] if isinstance(value, str) else (as_str_list(p, path, value) or ())):
        where = path if isinstance(value, str) else (*path, i)
        try:
            rel = repo_relative(ctx.mounts.stack_dir, raw)
        except PathEscapeError as exc:
            p.add(where, f"label_file: {exc}")
            continue
        text = ctx.read_text(rel)
        if text is None:
            p.add(where, f"label file {rel!r} not found")
            continue
        try:
            out.update(parse_dotenv(text, ctx.env))
        except DotenvError as exc:
            p.extend([DesiredStateError(str(exc), Location(rel, exc.line))])
    return out


def _env_files(
    p: Problems, path: KeyPath, value: object, ctx: ServiceContext
) -> list[tuple[str, bool, bool, KeyPath]]:
    """(repo-relative path, required, raw format, where) of each ``env_file`` entry."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        p.add(path, f"must be a string or a list, not a {type_name(value)}")
        return []
    out = []
    for i, item in enumerate(items):
        where = path if isinstance(value, str) else (*path, i)
        required, raw_format = True, False
        if isinstance(item, dict):
            check_keys(p, where, item, ("path", "required", "format"))
            required = bool(as_bool(p, (*where, "required"), item.get("required", True)))
            if item.get("format") not in (None, "raw", ""):
                p.add((*where, "format"), "env_file format must be raw, or left out for the dotenv format")
            raw_format = item.get("format") == "raw"
            item = item.get("path")
            where = (*where, "path")
        raw = as_str(p, where, item)
        if raw is None:
            continue
        try:
            out.append((repo_relative(ctx.mounts.stack_dir, raw), required, raw_format, where))
        except PathEscapeError as exc:
            p.add(where, f"env_file: {exc}")
    return out


def _healthcheck(p: Problems, path: KeyPath, value: object) -> Healthcheck | None:
    hc = as_mapping(p, path, value)
    if hc is None:
        return None
    check_keys(p, path, hc, _HEALTH_KEYS, ("start_interval",))
    if hc.get("disable") is not None and as_bool(p, (*path, "disable"), hc["disable"]):
        return Healthcheck(test=("NONE",), disable=True)
    test: tuple[str, ...] = ()
    raw = hc.get("test")
    if isinstance(raw, str):
        test = ("CMD-SHELL", raw)
    elif raw is not None:
        test = as_str_list(p, (*path, "test"), raw) or ()
        if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            p.add((*path, "test"), "a test list must start with CMD, CMD-SHELL or NONE")
    if test == ("NONE",):
        return Healthcheck(test=test, disable=True)
    durations: dict[str, int | None] = {}
    for key in ("interval", "timeout", "start_period"):
        if hc.get(key) is not None:
            durations[key] = as_duration(p, (*path, key), hc[key])
    retries = None
    if hc.get("retries") is not None:
        retries = as_int(p, (*path, "retries"), hc["retries"], minimum=0)
    return Healthcheck(
        test=test,
        interval_ns=durations.get("interval"),
        timeout_ns=durations.get("timeout"),
        retries=retries,
        start_period_ns=durations.get("start_period"),
    )


def _devices(p: Problems, path: KeyPath, value: object) -> tuple[str, ...]:
    """Normalize to ``host:container:perms`` (perms default ``rwm``, as Compose)."""
    if not isinstance(value, list):
        p.add(path, f"must be a list, not a {type_name(value)}")
        return ()
    out = []
    for i, item in enumerate(value):
        where = (*path, i)
        if isinstance(item, dict):
            check_keys(p, where, item, ("source", "target", "permissions"))
            src = as_str(p, (*where, "source"), item.get("source"))
            dst = item.get("target", src)
            perms = item.get("permissions", "rwm")
        else:
            spec = as_str(p, where, item)
            if spec is None:
                continue
            parts = spec.split(":")
            if len(parts) > 3:
                p.add(where, f"invalid device {spec!r}")
                continue
            src = parts[0]
            dst = parts[1] if len(parts) > 1 else src
            perms = parts[2] if len(parts) > 2 else "rwm"
        if not src or not isinstance(dst, str) or not isinstance(perms, str):
            p.add(where, "invalid device")
            continue
        if not perms or set(perms) - set("rwm"):
            p.add(where, f"invalid device permissions {perms!r}")
            continue
        out.append(f"{src}:{dst}:{perms}")
    return tuple(out)


def _logging(p: Problems, path: KeyPath, value: object) -> Logging | None:
    cfg = as_mapping(p, path, value)
    if cfg is None:
        return None
    check_keys(p, path, cfg, ("driver", "options"))
    driver = cfg.get("driver")
    if driver is not None:
        driver = as_str(p, (*path, "driver"), driver)
    options = as_dict_or_list(p, (*path, "options"), cfg.get("options") or {}) or {}
    return Logging(driver, tuple(sorted((k, v or "") for k, v in options.items())))


def _extra_hosts(p: Problems, path: KeyPath, value: object) -> tuple[str, ...]:
    """``host=ip``, ``host:ip`` or ``{host: ip}`` to docker's ``host:ip``, sorted as Compose."""
    out: list[str] = []
    if isinstance(value, dict):
        for host, ips in value.items():
            for ip in [ips] if is_scalar(ips) else (ips if isinstance(ips, list) else [None]):
                if not is_scalar(ip):
                    p.add((*path, host), "must be an IP address or a list of them")
                    continue
                out.append(f"{host}:{scalar_text(ip)}")
        return tuple(sorted(out))
    for i, entry in enumerate(as_str_list(p, path, value) or ()):
        sep = "=" if "=" in entry else ":"
        host, found, ip = entry.partition(sep)
        if not found or not host or not ip:
            p.add((*path, i), f"invalid extra host {entry!r} (use host=ip)")
            continue
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        out.append(f"{host}:{ip}")
    return tuple(sorted(out))


def _ulimits(p: Problems, path: KeyPath, value: object) -> tuple[Ulimit, ...]:
    limits = as_mapping(p, path, value) or {}
    out = []
    for name, spec in sorted(limits.items()):
        where = (*path, name)
        if isinstance(spec, dict):
            check_keys(p, where, spec, ("soft", "hard"))
            soft = as_int(p, (*where, "soft"), spec.get("soft"))
            hard = as_int(p, (*where, "hard"), spec.get("hard"))
        else:
            soft = hard = as_int(p, where, spec)
        if soft is not None and hard is not None:
            if soft > hard and hard >= 0:
                p.add(where, f"soft limit {soft} exceeds hard limit {hard}")
            out.append(Ulimit(name, soft, hard))
    return tuple(out)


