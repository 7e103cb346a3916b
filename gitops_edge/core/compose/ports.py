"""Service ``ports``: Compose's short and long syntax, to PortMapping.

Short syntax follows docker's ``nat.ParsePortSpec`` as Compose uses it:
``[[ip:]published:]target[/protocol]`` where ports may be ranges; equal
ranges expand to one mapping per port, a host range with one target stays a
range (docker picks a free port from it).
"""

from __future__ import annotations

from typing import Any

from gitops_edge.core.compose.fields import as_text, check_keys, type_name
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.model.spec import PortMapping

_PROTOCOLS = ("tcp", "udp", "sctp")
_LONG_KEYS = ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol")


class PortError(ValueError):
    """A port specification is malformed."""


def parse_ports(p: Problems, path: KeyPath, value: object) -> tuple[PortMapping, ...]:
    if not isinstance(value, list):
        p.add(path, f"must be a list, not a {type_name(value)}")
        return ()
    out: list[PortMapping] = []
    for i, item in enumerate(value):
        where = (*path, i)
        if isinstance(item, dict):
            mapping = _long(p, where, item)
            if mapping is not None:
                out.append(mapping)
            continue
        text = as_text(p, where, item)
        if text is None:
            continue
        try:
            out.extend(parse_short_port(text))
        except PortError as exc:
            p.add(where, str(exc))
    return tuple(out)


def parse_short_port(spec: str) -> list[PortMapping]:
    """One short-syntax entry; may expand to several mappings."""
    body, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    if protocol not in _PROTOCOLS:
        raise PortError(f"invalid protocol {protocol!r} in port {spec!r}")
    host_ip: str | None = None
    if body.startswith("["):
        close = body.find("]")
        if close < 0 or body[close + 1 : close + 2] != ":":
            raise PortError(f"invalid port {spec!r}")
        host_ip, body = body[1:close], body[close + 2 :]
        parts = body.split(":")
        if len(parts) != 2:
            raise PortError(f"invalid port {spec!r}")
        published, target = parts
    else:
        parts = body.rsplit(":", 2)
        if len(parts) == 1:
            published, target = "", parts[0]
        elif len(parts) == 2:
            published, target = parts
        else:
            host_ip, published, target = parts
    if host_ip == "":
        host_ip = None
    t_lo, t_hi = _range(target, spec, allow_zero=False)
    if not published:
        return [PortMapping(t, None, host_ip, protocol) for t in range(t_lo, t_hi + 1)]
    p_lo, p_hi = _range(published, spec, allow_zero=True)
    if t_lo == t_hi:
        pub = str(p_lo) if p_lo == p_hi else f"{p_lo}-{p_hi}"
        return [PortMapping(t_lo, pub, host_ip, protocol)]
    if p_hi - p_lo != t_hi - t_lo:
        raise PortError(f"invalid port {spec!r}: host and container ranges differ in size")
    return [
        PortMapping(t, str(p_lo + k), host_ip, protocol)
        for k, t in enumerate(range(t_lo, t_hi + 1))
    ]


def _range(text: str, spec: str, allow_zero: bool) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    lo, hi = _port(lo_s, spec, allow_zero), _port(hi_s if dash else lo_s, spec, allow_zero)
    if hi < lo:
        raise PortError(f"invalid port range in {spec!r}")
    return lo, hi


def _port(text: str, spec: str, allow_zero: bool) -> int:
    if not text.isdigit():
        raise PortError(f"invalid port {spec!r}")
    value = int(text)
    if value > 65535 or (value == 0 and not allow_zero):
        raise PortError(f"port out of range in {spec!r}")
    return value


def _long(p: Problems, path: KeyPath, item: dict[str, Any]) -> PortMapping | None:
    check_keys(p, path, item, _LONG_KEYS)
    if "target" not in item:
        p.add(path, "'target' is required")
        return None
    before = len(p.errors)
    target_t = as_text(p, (*path, "target"), item["target"])
    target = _checked(p, (*path, "target"), target_t, allow_zero=False)
    published: str | None = None
    if item.get("published") is not None:
        pub_t = as_text(p, (*path, "published"), item["published"])
        if pub_t:
            try:
                lo, hi = _range(pub_t, pub_t, allow_zero=True)
                published = str(lo) if lo == hi else f"{lo}-{hi}"
            except PortError as exc:
                p.add((*path, "published"), str(exc))
    host_ip = item.get("host_ip")
    if host_ip is not None and not isinstance(host_ip, str):
        p.add((*path, "host_ip"), "must be a string")
    protocol = item.get("protocol", "tcp")
    if protocol not in _PROTOCOLS:
        p.add((*path, "protocol"), f"invalid protocol {protocol!r}")
    mode = item.get("mode", "ingress")
    if mode not in ("ingress", "host"):
        p.add((*path, "mode"), f"invalid mode {mode!r}")
    if len(p.errors) != before or target is None:
        return None
    return PortMapping(target, published, host_ip or None, str(protocol))


def _checked(p: Problems, path: KeyPath, text: str | None, allow_zero: bool) -> int | None:
    if text is None:
        return None
    try:
        return _port(text, text, allow_zero)
    except PortError as exc:
        p.add(path, str(exc))
        return None
