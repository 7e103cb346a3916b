"""Compose's duration and byte-size notations, to integers.

Durations follow Go's ``time.ParseDuration`` (``1m30s``, ``500ms``, ``1.5h``),
which is what compose-go uses; the Compose schema requires them as strings,
so a bare number is rejected, as ``docker compose`` does. Sizes follow
docker's ``RAMInBytes`` (``512m``, ``1g``, ``100k``, ``1.5gb``, plain bytes).
"""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(b|ib)?$", re.IGNORECASE)
_BYTES_PER_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_duration(text: str) -> int:
    """Nanoseconds in a Go duration string; ``ValueError`` when malformed."""
    s = text.strip()
    if s in ("0", "-0", "+0"):
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _NS_PER_UNIT[m.group(2)]
        pos = m.end()
    return round(total)


def parse_size(value: str | int) -> int:
    """Bytes in a docker size (``512m``) or a plain integer; ``ValueError`` if bad."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {value!r}")
        return value
    m = _SIZE.match(value.strip())
    if m is None:
        raise ValueError(f"invalid size {value!r}")
    return int(float(m.group(1)) * _BYTES_PER_UNIT[m.group(2).lower()])
