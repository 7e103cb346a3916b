"""Logging: human lines by default, JSON lines for log shippers; never secrets.

Credentials only ever reach a log through a URL or an error text; both are
scrubbed here as a last line of defence (the adapters already redact).
Times are RFC 3339 with the zone in both formats. The engine passes
``extra={"stack": ..., "revision": ..., "step": ..., "outcome": ...}``; JSON
lines carry those as fields. Libraries speak only when something is wrong:
APScheduler, urllib3, docker and git are set to WARNING.
"""

from __future__ import annotations

import json
import logging
import re
import sys

_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+(:[^/@\s]*)?@", re.IGNORECASE)
_BEARER = re.compile(r"(authorization:\s*(?:basic|bearer)\s+)\S+", re.IGNORECASE)


def scrub(text: str) -> str:
    text = _SECRET_IN_URL.sub(r"\g<scheme>***@", text)
    return _BEARER.sub(r"\1***", text)


FIELDS = ("stack", "revision", "step", "outcome")
"""What the engine attaches to its records with ``extra=``; JSON lines carry them as fields."""

QUIET = ("apscheduler", "urllib3", "docker", "git")
"""Libraries that log every poll at INFO; they are heard from at WARNING."""


def rfc3339(ts: float, *, ms: bool = False) -> str:
    """Local time with its zone: ``2026-11-28T09:14:03+01:00`` (unambiguous for a log search)."""
    from datetime import datetime  # on the first record: a quiet one-shot command never needs it

    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds" if ms else "seconds")


class _HumanFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return rfc3339(record.created)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": rfc3339(record.created, ms=True),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out)


def human_formatter() -> logging.Formatter:
    """The human line format, scrubbed: for the terminal and for a client of the control socket."""
    return _HumanFormatter("%(asctime)s %(levelname)s %(message)s")


def setup_logging(level: str = "info", fmt: str = "human") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(human_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    for name in QUIET:  # even at --log-level debug: their debug is about them, not the device
        logging.getLogger(name).setLevel(logging.WARNING)
