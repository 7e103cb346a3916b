"""Parse the ``mqtt`` config section and broker URLs (``mqtt://host:port``, ``mqtts://``)."""

from __future__ import annotations

import re
from pathlib import Path

from gitops_edge.core.config_location import Locator
from gitops_edge.errors import ConfigError
from gitops_edge.model.config import MqttConfig

MQTT_KEYS = {"broker", "topic_prefix", "username", "password_file", "tls", "ca_file", "keepalive", "cert_file",
             "key_file", "push", "heartbeat"}  # heartbeat (a duration) is read by core.config
MQTTS_PORT = 8883  # the IANA port of MQTT over TLS; plain MQTT's is MqttConfig.port
_BROKER = re.compile(r"(?P<scheme>mqtts?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)(?::(?P<port>\d{1,5}))?/?")
_PREFIX = re.compile(r"[^#+\s/][^#+\s]*(?<!/)")


def parse_broker(url: str) -> tuple[str, int, bool]:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` -> (host, port, tls); ValueError otherwise."""
    m = _BROKER.fullmatch(url.strip())
    if m is None:
        raise ValueError(f"invalid broker URL {url!r} (use mqtt://HOST:PORT or mqtts://HOST:PORT)")
    tls = m.group("scheme") == "mqtts"
    port = int(m.group("port") or (MQTTS_PORT if tls else MqttConfig.port))
    if not 0 < port < 65536:
        raise ValueError(f"invalid broker port in {url!r}")
    return m.group("host").strip("[]"), port, tls


def check_prefix(prefix: str) -> str:
    """A topic prefix: no wildcards, no leading or trailing slash."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"invalid topic prefix {prefix!r} (no '+', '#', spaces, or leading/trailing '/')")
    return prefix


def parse_mqtt(r: Locator, data: object) -> MqttConfig | None:
    """None when the section is absent; ``r`` places errors in the file."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping", r.loc(("mqtt",)))
    for k in data:
        if k not in MQTT_KEYS:
            raise ConfigError(f"unknown key (allowed: {', '.join(sorted(MQTT_KEYS))})", r.loc(("mqtt", k)))

    def text(key: str) -> str | None:
        v = data.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or not v:
            raise ConfigError("must be a non-empty string", r.loc(("mqtt", key)))
        return v

    broker = text("broker")
    if broker is None:
        raise ConfigError("mqtt.broker is required (e.g. mqtt://127.0.0.1:1883)", r.loc(("mqtt",)))
    try:
        host, port, tls = parse_broker(broker)
        prefix = check_prefix(text("topic_prefix") or MqttConfig.topic_prefix)
    except ValueError as exc:
        raise ConfigError(str(exc), r.loc(("mqtt", "broker" if "broker" in str(exc) else "topic_prefix"))) from None
    tls_flag = data.get("tls", tls)
    if not isinstance(tls_flag, bool):
        raise ConfigError("must be true or false", r.loc(("mqtt", "tls")))
    keepalive = data.get("keepalive", MqttConfig.keepalive_s)
    if not isinstance(keepalive, int) or isinstance(keepalive, bool) or not 5 <= keepalive <= 3600:
        raise ConfigError("must be whole seconds between 5 and 3600", r.loc(("mqtt", "keepalive")))
    password_file, ca_file = text("password_file"), text("ca_file")
    cert_file, key_file = text("cert_file"), text("key_file")
    if (cert_file is None) != (key_file is None):
        raise ConfigError("cert_file and key_file go together (the client certificate and its key)",
                          r.loc(("mqtt", "cert_file" if cert_file else "key_file")))  # fmt: skip
    push = data.get("push", MqttConfig.push)
    if not isinstance(push, bool):
        raise ConfigError("must be true or false", r.loc(("mqtt", "push")))
    return MqttConfig(
        host=host,
        port=port,
        tls=tls_flag or ca_file is not None or cert_file is not None,
        topic_prefix=prefix,
        username=text("username"),
        password_file=Path(password_file) if password_file else None,
        ca_file=Path(ca_file) if ca_file else None,
        keepalive_s=keepalive,
        cert_file=Path(cert_file) if cert_file else None,
        key_file=Path(key_file) if key_file else None,
        push=push,
    )
