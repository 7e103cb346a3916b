"""Validate the device-local agent configuration (keys: README.md, ``config/*.example.yaml``).

Input is plain data (the adapter parsed the YAML and knows the lines);
output is a frozen ``AgentConfig`` or a ``ConfigError`` naming the key.
Every default comes from the model's field defaults (``SourceConfig.ref`` is
the class attribute dataclasses leave there): written once, in ``model/config.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gitops_edge.core.compose.problems import KeyPath, LineMap
from gitops_edge.core.compose.units import parse_duration as go_duration_ns
from gitops_edge.core.config_mqtt import parse_mqtt
from gitops_edge.core.config_trust import (
    parse_commit_verification,
    parse_registries,
    parse_security,
    parse_trust,
)
from gitops_edge.core.identity import IDENTITY_VAR, expand_identity
from gitops_edge.core.labels import ID_KEY, scalar_text
from gitops_edge.core.platform import parse_platform
from gitops_edge.errors import ConfigError, Location
from gitops_edge.model.config import (
    DAYS,
    DEFAULT_STATE_DIR,
    AgentConfig,
    DeviceConfig,
    HealthConfig,
    MetricsConfig,
    MqttConfig,
    NotifyConfig,
    RetentionConfig,
    SourceConfig,
    StatusConfig,
    UpdateWindow,
)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")

SECTION_KEYS: dict[str, set[str]] = {  # the keys each section allows; "" is the top level
    "": {"device", "source", "state_dir", "health", "status", "trust", "security", "registries", "update_windows",
         "notify", "mqtt", "metrics", "retention"},
    "device": {"id", "labels", "platform", "secrets_dir"},
    "source": {"url", "ref", "path", "interval", "jitter", "token_file", "username", "ssh_key", "known_hosts",
               "timeout", "verify", "allow_rewind", "spread_start", "hint_spread", "hint_min_gap"},
    "health": {"timeout", "stable_for"},
    "status": {"listen", "webhook_secret_file"},
    "metrics": {"pushgateway", "timeout"},
    "notify": {"webhook", "timeout", "repeat_after"},
    "retention": {"history", "history_days", "rollback_revisions", "min_free_space", "full_check"},
}

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?", re.IGNORECASE)


def parse_size(value: object) -> int:
    """``500MB``, ``2GiB``, ``1.5G`` or a number of bytes -> bytes (K/M/G/T are powers of 1000, Ki/Mi.. of 1024)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid size {value!r}")
    m = _SIZE.fullmatch(str(value).strip())
    if m is None:
        raise ValueError(f"invalid size {value!r} (e.g. 500MB, 2GiB)")
    unit = (m.group(2) or "b").lower().rstrip("b")
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[unit.rstrip("i")]
    base = 1024 if unit.endswith("i") else 1000
    return int(float(m.group(1)) * base**power)


def parse_duration(value: object) -> float:
    """``30s``, ``5m``, ``1m30s``, ``500ms`` or a number of seconds -> seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration {value!r}")
        return float(value)
    if _SECONDS.fullmatch(value.strip()):  # a bare number, e.g. from `interval: ${POLL}`
        return float(value)
    try:
        ns = go_duration_ns(value)
    except ValueError:
        raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1m30s)") from None
    if ns < 0:
        raise ValueError(f"negative duration {value!r}")
    return ns / 1e9


def expand_env(
    text: str, environ: Mapping[str, str], where: Callable[[], Location], keep: frozenset[str] = frozenset()
) -> str:
    """``${VAR}`` and ``${VAR:-default}`` from the agent's environment; names in ``keep`` stay as written."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in keep:
            return m.group(0)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise ConfigError(f"environment variable {name} is not set", where())
            return default
        return value

    return _VAR.sub(sub, text)


class ConfigReader:
    def __init__(self, file: str, lines: LineMap, environ: Mapping[str, str]) -> None:
        self.file, self.lines, self.environ = file, lines, environ
        self.device: DeviceConfig | None = None  # set once parsed: then ${DEVICE_ID}, ${label:X} expand

    def loc(self, path: KeyPath) -> Location:
        line = None
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                line = self.lines[path[:n]]
                break
        return Location(self.file, line, ".".join(str(p) for p in path) or None)

    def expand(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, str):
            if self.device is None or path[:1] == ("device",):
                return expand_env(value, self.environ, lambda: self.loc(path))
            text = expand_env(value, self.environ, lambda: self.loc(path), keep=frozenset({IDENTITY_VAR}))
            return expand_identity(text, self.device, lambda: self.loc(path))
        if isinstance(value, dict):
            return {k: self.expand(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def section(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError("must be a mapping", self.loc((key,)))
        allowed = SECTION_KEYS.get(key)
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    raise ConfigError(f"unknown key (allowed: {', '.join(sorted(allowed))})", self.loc((key, k)))
        return value

    def string(self, sect: Mapping[str, Any], path: tuple[str, str], default: str | None = None) -> str | None:
        value = sect.get(path[1], default)
        if value is None:
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ConfigError("must be a string", self.loc(path))
        return str(value)

    def duration(self, sect: Mapping[str, Any], path: tuple[str, str], default: float) -> float:
        if path[1] not in sect:
            return default
        try:
            return parse_duration(sect[path[1]])
        except ValueError as exc:
            raise ConfigError(str(exc), self.loc(path)) from None


def _windows(r: ConfigReader, data: object) -> tuple[UpdateWindow, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError("must be a list of {days, start, end}", r.loc(("update_windows",)))
    out = []
    for i, w in enumerate(data):
        where = ("update_windows", i)
        if not isinstance(w, dict) or set(w) - {"days", "start", "end"}:
            raise ConfigError("must be {days: [mon, ...], start: HH:MM, end: HH:MM}", r.loc(where))
        days = w.get("days") or list(DAYS)
        if not isinstance(days, list) or any(str(d).lower()[:3] not in DAYS for d in days):
            raise ConfigError(f"days must be a list of {', '.join(DAYS)}", r.loc((*where, "days")))
        try:
            from gitops_edge.core.windows import parse_clock  # datetime: only for a config with windows

            start, end = parse_clock(str(w.get("start", "00:00"))), parse_clock(str(w.get("end", "24:00")))
        except ValueError as exc:
            raise ConfigError(str(exc), r.loc(where)) from None
        out.append(UpdateWindow(tuple(str(d).lower()[:3] for d in days), start, end))
    return tuple(out)


def _notify(r: ConfigReader, data: Mapping[str, Any]) -> NotifyConfig:
    if data.get("notify") is None:
        return NotifyConfig()
    notify = r.section(data, "notify")
    url = r.string(notify, ("notify", "webhook"))
    if url and not re.match(r"https?://", url):
        raise ConfigError("must be an http(s) URL", r.loc(("notify", "webhook")))
    repeat = notify.get("repeat_after", NotifyConfig.repeat_after)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise ConfigError("must be a positive integer", r.loc(("notify", "repeat_after")))
    return NotifyConfig(
        webhook=url, timeout_s=r.duration(notify, ("notify", "timeout"), NotifyConfig.timeout_s), repeat_after=repeat
    )


def _retention(r: ConfigReader, data: Mapping[str, Any]) -> RetentionConfig:
    if data.get("retention") is None:
        return RetentionConfig()
    sect = r.section(data, "retention")

    def count(key: str, default: int, least: int) -> int:
        value = sect.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"must be an integer >= {least}", r.loc(("retention", key)))
        return value

    free = RetentionConfig.min_free_bytes
    if "min_free_space" in sect:
        try:
            free = parse_size(sect["min_free_space"])
        except ValueError as exc:
            raise ConfigError(str(exc), r.loc(("retention", "min_free_space"))) from None
    days = sect.get("history_days", RetentionConfig.history_days)
    if not isinstance(days, int | float) or isinstance(days, bool) or days <= 0:
        raise ConfigError("must be a number of days > 0", r.loc(("retention", "history_days")))
    return RetentionConfig(
        history=count("history", RetentionConfig.history, 1),
        history_days=float(days),
        rollback_revisions=count("rollback_revisions", RetentionConfig.rollback_revisions, 1),
        min_free_bytes=free,
        full_check_s=r.duration(sect, ("retention", "full_check"), RetentionConfig.full_check_s),
    )


def _metrics(r: ConfigReader, data: Mapping[str, Any]) -> MetricsConfig:
    if data.get("metrics") is None:
        return MetricsConfig()
    metrics = r.section(data, "metrics")
    url = r.string(metrics, ("metrics", "pushgateway"))
    if url is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise ConfigError("must be an http(s) URL, e.g. http://pushgateway:9091", r.loc(("metrics", "pushgateway")))
    timeout = r.duration(metrics, ("metrics", "timeout"), MetricsConfig.timeout_s)
    if timeout <= 0:
        raise ConfigError("must be greater than zero", r.loc(("metrics", "timeout")))
    return MetricsConfig(pushgateway=url, timeout_s=timeout)


def _mqtt(r: ConfigReader, data: Mapping[str, Any], device: DeviceConfig) -> MqttConfig | None:
    """The ``mqtt`` section (core.config_mqtt), plus what needs this reader: durations, the device id."""
    mqtt = parse_mqtt(r, data.get("mqtt"))
    if mqtt is None:
        return None
    heartbeat = r.duration(data["mqtt"], ("mqtt", "heartbeat"), MqttConfig.heartbeat_s)
    if heartbeat < 10:
        raise ConfigError("must be at least 10s", r.loc(("mqtt", "heartbeat")))
    from gitops_edge.core.push import REFS_LEAF  # with mqtt only: a config without it need not import push

    if device.id == REFS_LEAF:
        reason = f"device.id {REFS_LEAF!r} is reserved with mqtt: <prefix>/{REFS_LEAF}/ carries the push hints"
        raise ConfigError(reason, r.loc(("device", "id")))
    return replace(mqtt, heartbeat_s=heartbeat)


def _bool(r: ConfigReader, sect: Mapping[str, Any], path: tuple[str, str], default: bool) -> bool:
    value = sect.get(path[1], default)
    if not isinstance(value, bool):
        raise ConfigError("must be true or false", r.loc(path))
    return value


def _device(r: ConfigReader, data: Mapping[str, Any], hostname: str) -> DeviceConfig:
    dev = r.section(data, "device")
    labels = dev.get("labels") or {}
    if not isinstance(labels, dict):
        raise ConfigError("must be a mapping of label: value", r.loc(("device", "labels")))
    pairs = []
    for k, v in labels.items():
        text = scalar_text(v)
        if k == ID_KEY:
            raise ConfigError("'id' is reserved: selectors use it for device.id", r.loc(("device", "labels", k)))
        if text is None:
            raise ConfigError("must be a string, number or boolean", r.loc(("device", "labels", k)))
        pairs.append((str(k), text))
    platform = r.string(dev, ("device", "platform"))
    if platform is not None:
        try:
            platform = str(parse_platform(platform))
        except ValueError as exc:
            raise ConfigError(str(exc), r.loc(("device", "platform"))) from None
    secrets_dir = r.string(dev, ("device", "secrets_dir"))
    if secrets_dir is not None and not secrets_dir.startswith("/"):
        raise ConfigError("must be an absolute path", r.loc(("device", "secrets_dir")))
    return DeviceConfig(id=r.string(dev, ("device", "id")) or hostname, labels=tuple(sorted(pairs)),
                        platform=platform, secrets_dir=secrets_dir)


def parse_config(
    data: object,
    *,
    file: str,
    lines: LineMap | None = None,
    environ: Mapping[str, str] | None = None,
    hostname: str = "device",
) -> AgentConfig:
    r = ConfigReader(file, lines or {}, environ or {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the agent config must be a mapping", Location(file, 1))
    raw: dict[str, Any] = data
    for k in raw:
        if k not in SECTION_KEYS[""]:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(SECTION_KEYS['']))})", r.loc((k,)))
    # device first, from the environment only; everything else may then use its identity
    r.device = _device(r, {"device": r.expand(raw.get("device"), ("device",))}, hostname)
    data = dict(r.expand(raw, ()))
    device = r.device

    src = r.section(data, "source")
    url = r.string(src, ("source", "url"))
    if not url:
        raise ConfigError("source.url is required", r.loc(("source",)) if "source" in data else Location(file))
    path = r.string(src, ("source", "path"), SourceConfig.path) or SourceConfig.path
    if path.startswith("/") or ".." in Path(path).parts:
        raise ConfigError("must be a relative path inside the repository", r.loc(("source", "path")))

    def opt_path(key: str) -> Path | None:
        v = r.string(src, ("source", key))
        return Path(v) if v else None

    source = SourceConfig(
        url=url,
        ref=r.string(src, ("source", "ref"), SourceConfig.ref) or SourceConfig.ref,
        path=path,
        interval_s=r.duration(src, ("source", "interval"), SourceConfig.interval_s),
        jitter_s=r.duration(src, ("source", "jitter"), SourceConfig.jitter_s),
        token_file=opt_path("token_file"),
        username=r.string(src, ("source", "username"), SourceConfig.username) or SourceConfig.username,
        ssh_key=opt_path("ssh_key"),
        known_hosts=opt_path("known_hosts"),
        timeout_s=r.duration(src, ("source", "timeout"), SourceConfig.timeout_s),
        verify=parse_commit_verification(r, src.get("verify")),
        allow_rewind=_bool(r, src, ("source", "allow_rewind"), SourceConfig.allow_rewind),
        spread_start=_bool(r, src, ("source", "spread_start"), SourceConfig.spread_start),
        hint_spread_s=r.duration(src, ("source", "hint_spread"), SourceConfig.hint_spread_s),
        hint_min_gap_s=r.duration(src, ("source", "hint_min_gap"), SourceConfig.hint_min_gap_s),
    )
    if source.interval_s <= 0:
        raise ConfigError("must be greater than zero", r.loc(("source", "interval")))

    state_dir = data.get("state_dir", DEFAULT_STATE_DIR)
    if not isinstance(state_dir, str) or not state_dir:
        raise ConfigError("must be a directory path", r.loc(("state_dir",)))

    health_sect = r.section(data, "health")
    health = HealthConfig(
        timeout_s=r.duration(health_sect, ("health", "timeout"), HealthConfig.timeout_s),
        stable_for_s=r.duration(health_sect, ("health", "stable_for"), HealthConfig.stable_for_s),
    )
    status_sect = r.section(data, "status")
    listen = r.string(status_sect, ("status", "listen"), StatusConfig.listen) or ""
    if listen and not (re.fullmatch(r"[\w.\-\[\]:]+:\d+", listen) and int(listen.rsplit(":", 1)[1]) < 65536):
        raise ConfigError("must be HOST:PORT", r.loc(("status", "listen")))
    secret_file = r.string(status_sect, ("status", "webhook_secret_file"))
    if secret_file is not None and not listen:
        raise ConfigError("needs status.listen (the webhook is served there)", r.loc(("status", "webhook_secret_file")))
    return AgentConfig(
        device=device,
        source=source,
        state_dir=Path(state_dir),
        health=health,
        status=StatusConfig(listen=listen, webhook_secret_file=Path(secret_file) if secret_file else None),
        trust=parse_trust(r, data.get("trust")),
        security=parse_security(r, data.get("security")),
        registries=parse_registries(r, data.get("registries")),
        update_windows=_windows(r, data.get("update_windows")),
        notify=_notify(r, data),
        mqtt=_mqtt(r, data, device),
        metrics=_metrics(r, data),
        retention=_retention(r, data),
        config_file=file,
    )
