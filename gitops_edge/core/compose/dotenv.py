"""Compose's dotenv dialect (``.env`` and ``env_file``), parsed from text.

Rules, as compose-go's ``dotenv`` applies them: blank lines and ``#`` lines
are skipped; an optional ``export `` prefix is dropped; unquoted values end
at `` #`` and are trimmed; single quotes are literal; double quotes honour
``\\n \\r \\t \\\\ \\" \\$`` escapes and may span lines; unquoted and
double-quoted values are interpolated from the variables defined above them,
then from ``lookup``. A bare ``KEY`` takes its value from ``lookup`` and is
dropped when ``lookup`` has none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gitops_edge.core.compose.interpolate import InterpolationError, interpolate

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$$"}


class DotenvError(ValueError):
    """A line of a dotenv file cannot be parsed; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def parse_dotenv(text: str, lookup: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables defined by a dotenv file, in file order."""
    base = dict(lookup or {})
    result: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        m = _KEY.match(line)
        if m is None:
            raise DotenvError(f"invalid variable name in {line!r}", lineno)
        key = m.group(0)
        rest = line[m.end() :].lstrip(" \t")
        scope = {**base, **result}
        if not rest or rest.startswith("#"):
            if key in base:
                result[key] = base[key]
            continue
        if rest[0] != "=":
            raise DotenvError(f"expected '=' after {key!r}", lineno)
        raw = rest[1:].lstrip(" \t")
        try:
            if raw[:1] in ("'", '"'):
                value, i = _quoted(raw, lines, i, lineno)
                if raw[0] == '"':
                    value = interpolate(value, scope)
            else:
                value = interpolate(_strip_comment(raw), scope)
        except InterpolationError as exc:
            raise DotenvError(f"{key}: {exc}", lineno) from None
        result[key] = value
    return result


def _strip_comment(raw: str) -> str:
    cut = re.search(r"\s#", raw)
    return (raw[: cut.start()] if cut else raw).strip()


def _quoted(raw: str, lines: list[str], nxt: int, lineno: int) -> tuple[str, int]:
    """The unescaped body of a quoted value, possibly continuing on later lines.

    Double-quoted ``\\$`` is kept as ``$$`` so that interpolation afterwards
    yields one literal ``$``. Returns the value and the next line index.
    """
    quote = raw[0]
    buf: list[str] = []
    text = raw[1:]
    while True:
        j = 0
        while j < len(text):
            ch = text[j]
            if quote == '"' and ch == "\\" and j + 1 < len(text):
                esc = text[j + 1]
                buf.append(_ESCAPES.get(esc, "\\" + esc))
                j += 2
                continue
            if ch == quote:
                tail = text[j + 1 :].strip()
                if tail and not tail.startswith("#"):
                    raise DotenvError(f"unexpected text after closing quote: {tail!r}", lineno)
                return "".join(buf), nxt
            buf.append(ch if quote == '"' or ch != "$" else "$")
            j += 1
        if nxt >= len(lines):
            raise DotenvError("unterminated quoted value", lineno)
        buf.append("\n")
        text = lines[nxt]
        nxt += 1


def parse_raw_env(text: str) -> dict[str, str]:
    """``env_file`` with ``format: raw``: ``KEY=VALUE`` taken literally (no quotes, no ``$``).

    As compose-go reads it: leading blanks are dropped, blank and ``#``
    lines skipped, a line without ``=`` ignored, a key holding blanks refused.
    """
    result: dict[str, str] = {}
    for lineno, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        line = raw.lstrip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if not key or any(c.isspace() for c in key):
            raise DotenvError(f"variable {key!r} contains whitespaces", lineno)
        result[key] = value
    return result
