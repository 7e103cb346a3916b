"""Logging: human lines by default, JSON lines for log shippers; never secrets.

Credentials only ever reach a log through a URL or an error text; both are
scrubbed here as a last line of defence (the adapters already redact).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+(:[^/@\s]*)?@", re.IGNORECASE)
_BEARER = re.compile(r"(authorization:\s*(?:basic|bearer)\s+)\S+", re.IGNORECASE)


def scrub(text: str) -> str:
    text = _SECRET_IN_URL.sub(r"\g<scheme>***@", text)
    return _BEARER.sub(r"\1***", text)


class _HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out)


def human_formatter() -> logging.Formatter:
    """The human line format, scrubbed: for the terminal and for a client of the control socket."""
    return _HumanFormatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


def setup_logging(level: str = "info", fmt: str = "human") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(human_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
