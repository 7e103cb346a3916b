"""Compose variable interpolation, as compose-go's ``template`` package does it.

Supported: ``$$`` (a literal ``$``), ``$VAR``, ``${VAR}``, and the modifiers
``:-  -  :?  ?  :+  +`` whose operand may itself hold substitutions
(``${A:-${B:-x}}``). A ``$`` followed by anything else stays literal, as in
Compose; malformed braces are an error rather than a silent guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A ``${...}`` expression is malformed or a required variable is missing."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute every variable reference in ``text`` from ``env``.

    Unset variables without a default become the empty string, as in Compose.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            out.append(_expand_braced(text[i + 2 : end], env))
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if m is None:
                out.append("$")
                i += 1
            else:
                out.append(env.get(m.group(0), ""))
                i = m.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose body starts at ``start``."""
    depth = 1
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "$" and text.startswith("$$", i):
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"invalid interpolation format: unclosed '${{' in {text!r}")


def _expand_braced(body: str, env: Mapping[str, str]) -> str:
    m = _NAME.match(body)
    if m is None:
        raise InterpolationError(f"invalid interpolation format: '${{{body}}}'")
    name = m.group(0)
    rest = body[m.end() :]
    if not rest:
        return env.get(name, "")
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(f"invalid interpolation format: '${{{body}}}'")
    operand = rest[len(op) :]
    value = env.get(name)
    is_set = value is not None
    non_empty = bool(value)
    if op in (":-", "-"):
        use_value = non_empty if op == ":-" else is_set
        return value if use_value and value is not None else interpolate(operand, env)
    if op in (":?", "?"):
        ok = non_empty if op == ":?" else is_set
        if ok and value is not None:
            return value
        msg = interpolate(operand, env)
        detail = f": {msg}" if msg else ""
        raise InterpolationError(f"required variable {name} is missing a value{detail}")
    # ":+" and "+": the alternative when set (and non-empty for ":+").
    use_alt = non_empty if op == ":+" else is_set
    return interpolate(operand, env) if use_alt else ""
