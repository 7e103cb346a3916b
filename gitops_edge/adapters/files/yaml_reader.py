"""Safe YAML for desired state: plain data plus the line of every key.

PyYAML's composer gives us nodes with marks; we build plain Python values
ourselves so that we can (a) resolve scalars the way Compose's YAML 1.2
parser does (``yes``/``on`` stay strings, no timestamps), (b) refuse
duplicate keys, several documents and alias bombs, and (c) remember the
line of each key path for error messages from the pure core.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops_edge.errors import DesiredStateError, Location

MAX_FILE_BYTES = 1 << 20
MAX_NODES = 100_000
"""Values built, counting every alias expansion: a bound against billion-laughs."""

KeyPath = tuple[str | int, ...]

_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INF = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"}
_NEG_INF = {"-.inf", "-.Inf", "-.INF"}
_NAN = {".nan", ".NaN", ".NAN"}
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "value")
}
_SEQ_TAG = "tag:yaml.org,2002:seq"
# libyaml's parser when PyYAML has it (several times faster, same nodes and marks), else pure Python.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAP_TAG = "tag:yaml.org,2002:map"


@dataclass(frozen=True)
class YamlDocument:
    data: dict[str, Any]
    lines: dict[KeyPath, int]


def read_yaml_file(path: Path, display: str, max_bytes: int = MAX_FILE_BYTES) -> YamlDocument:
    """Parse one file that must hold a single YAML mapping.

    ``display`` is the repo-relative name used in error messages.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DesiredStateError(
                f"file is {size} bytes, larger than the {max_bytes}-byte limit", Location(display)
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise DesiredStateError(f"cannot read file: {exc.strerror}", Location(display)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DesiredStateError("file is not valid UTF-8", Location(display)) from None
    return parse_yaml(text, display)


def parse_yaml(text: str, display: str) -> YamlDocument:
    """Parse YAML text holding one mapping; every failure is a DesiredStateError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.composer.ComposerError as exc:
        if "single document" in f"{exc.problem} {exc.context}":
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            raise DesiredStateError(
                "several YAML documents in one file; exactly one is allowed",
                Location(display, line),
            ) from None
        raise _syntax_error(exc, display) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, display) from None
    finally:
        loader.dispose()
    if node is None:
        raise DesiredStateError("empty file: a YAML mapping is required", Location(display, 1))
    if not isinstance(node, yaml.MappingNode):
        raise DesiredStateError(
            "top level must be a mapping", Location(display, node.start_mark.line + 1)
        )
    builder = _Builder(display)
    data = builder.build(node, ())
    assert isinstance(data, dict)
    return YamlDocument(data, builder.lines)


def _syntax_error(exc: yaml.YAMLError, display: str) -> DesiredStateError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    msg = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    return DesiredStateError(" ".join(msg.split()), Location(display, line))


class _Builder:
    def __init__(self, display: str) -> None:
        self.display = display
        self.lines: dict[KeyPath, int] = {(): 1}
        self.count = 0
        self.active: set[int] = set()

    def _fail(self, message: str, node: yaml.Node, path: KeyPath) -> DesiredStateError:
        key = _format(path) or None
        return DesiredStateError(message, Location(self.display, node.start_mark.line + 1, key))

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self._fail(
                f"document expands to more than {MAX_NODES} values (alias bomb?)", node, path
            )
        if id(node) in self.active:
            raise self._fail("recursive YAML alias", node, path)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if node.tag not in (_SEQ_TAG, _MAP_TAG):
                raise self._fail(f"unsupported YAML tag {node.tag}", node, path)
            if isinstance(node, yaml.SequenceNode):
                items = []
                for i, child in enumerate(node.value):
                    self.lines.setdefault((*path, i), child.start_mark.line + 1)
                    items.append(self.build(child, (*path, i)))
                return items
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [
                    value_node
                ]
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        raise self._fail("'<<' merge needs a mapping", src, path)
                    merged.append(src)
                continue
            key = self._key(key_node, path)
            if key in out:
                raise self._fail(f"duplicate key {key!r}", key_node, (*path, key))
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
        for src in merged:
            for k, v in self._mapping(src, path).items():
                out.setdefault(k, v)
        return out

    def _key(self, node: yaml.Node, path: KeyPath) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self._fail("mapping keys must be scalars", node, path)
        value = self._scalar(node, path)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "null" if value is None else str(value) if not isinstance(value, str) else value

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag not in _SCALAR_TAGS:
            raise self._fail(f"unsupported YAML tag {node.tag}", node, path)
        if node.style or node.tag == _STR_TAG:  # plain: None (Python parser) or "" (libyaml)
            return node.value
        return _resolve_plain(node.value)


def _resolve_plain(text: str) -> Any:
    """Resolve an untagged plain scalar by YAML 1.2's core schema, as go-yaml v3 does."""
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _INT_OCT.match(text):
        return int(text[2:], 8)
    if _INT_HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if text in _INF:
        return math.inf
    if text in _NEG_INF:
        return -math.inf
    if text in _NAN:
        return math.nan
    return text


def _format(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
