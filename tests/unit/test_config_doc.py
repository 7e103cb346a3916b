"""docs/config.md lists exactly the keys the agent config parser accepts.

The accepted keys are not copied from constants: each section is asked, by
giving it a key it cannot know and reading the "allowed: ..." list of the
error. A section parser that learns a key the page does not list (or the
page listing one it refuses) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gitops_edge.core.config import parse_config
from gitops_edge.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"
PROBE = "zz_not_a_key"


def documented() -> set[str]:
    """Every `key` in the first column of a table."""
    return {m.group(1) for m in re.finditer(r"^\| `([a-z_.\[\]]+)` \|", DOC.read_text(), re.MULTILINE)}


def _with(path: tuple[str, ...], value: dict[str, Any]) -> dict[str, Any]:
    """A config that is valid up to the section at ``path``, which holds ``value``."""
    cfg: dict[str, Any] = {"source": {"url": "/r"}}
    sections: dict[tuple[str, ...], Any] = {
        (): lambda v: {**cfg, **v},
        ("device",): lambda v: {**cfg, "device": v},
        ("source",): lambda v: {"source": {"url": "/r", **v}},
        ("source", "verify"): lambda v: {"source": {"url": "/r", "verify": v}},
        ("trust",): lambda v: {**cfg, "trust": v},
        ("trust", "images[]"): lambda v: {**cfg, "trust": {"images": [{"match": "x/*", **v}]}},
        ("trust", "images[]", "keyless[]"): lambda v: {
            **cfg, "trust": {"images": [{"match": "x/*", "keyless": [v]}]}},
        ("mqtt",): lambda v: {**cfg, "mqtt": {"broker": "mqtt://b", **v}},
    }
    make = sections.get(path, lambda v: {**cfg, path[0]: v})
    return dict(make(value))


SECTIONS = [(), ("device",), ("source",), ("source", "verify"), ("health",), ("status",), ("notify",),
            ("mqtt",), ("trust",), ("trust", "images[]"), ("trust", "images[]", "keyless[]"), ("security",),
            ("registries",), ("metrics",), ("retention",)]


def accepted(path: tuple[str, ...]) -> set[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(_with(path, {PROBE: 1}), file="probe.yaml")
    found = re.search(r"unknown key \(allowed: ([^)]*)\)", str(err.value))
    assert found, f"{'.'.join(path) or 'top level'}: {err.value}"
    prefix = "".join(f"{p}." for p in path)
    return {prefix + k.strip() for k in found.group(1).split(",")}


def window_keys() -> set[str]:
    """update_windows items are checked as a whole; the error spells the keys out."""
    with pytest.raises(ConfigError) as err:
        parse_config({"source": {"url": "/r"}, "update_windows": [{PROBE: 1}]}, file="probe.yaml")
    shape = re.search(r"must be \{(.*)\}", str(err.value))
    assert shape, str(err.value)
    return {f"update_windows[].{k}" for k in re.findall(r"(\w+): ", shape.group(1))}


def test_every_accepted_key_is_documented_and_every_documented_key_is_accepted() -> None:
    keys = set().union(*(accepted(p) for p in SECTIONS)) | window_keys()
    assert {"source.url", "mqtt.keepalive", "trust.images[].keyless[].issuer", "update_windows[].days"} <= keys
    doc = documented()
    assert keys - doc == set(), "accepted by the parser but missing from docs/config.md"
    assert doc - keys == set(), "in docs/config.md but refused by the parser"

