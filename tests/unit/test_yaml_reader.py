"""The safe YAML reader: Compose's scalar rules, line map, and what it refuses."""

from __future__ import annotations

import pytest

from gitops_edge.adapters.files.yaml_reader import parse_yaml
from gitops_edge.errors import DesiredStateError


def test_scalars_follow_yaml_1_2_like_compose() -> None:
    doc = parse_yaml("a: [yes, on, true, 0x10, 010, 1_000, ~, '3', 2020-01-01, 1.5]\n", "f")
    assert doc.data["a"] == ["yes", "on", True, 16, 10, 1000, None, "3", "2020-01-01", 1.5]


def test_line_map_and_merge_keys() -> None:
    doc = parse_yaml("x: &b\n  image: n\nservices:\n  web:\n    <<: *b\n    ports:\n"
                     "      - 80\n", "f")
    assert doc.data["services"]["web"] == {"ports": [80], "image": "n"}
    assert doc.lines[("services", "web", "ports", 0)] == 7
    assert doc.lines[("services", "web", "image")] == 2


@pytest.mark.parametrize(("text", "message", "line"), [
    ("a: 1\na: 2\n", "duplicate key 'a'", 2),
    ("a: [1\n", "YAML syntax error", 2),
    ("a: 1\n---\nb: 2\n", "several YAML documents", 2),
    ("- 1\n", "top level must be a mapping", 1),
    ("", "empty file", 1),
    ("a: !!python/object:os.system x\n", "unsupported YAML tag", 1),
    ("a: &a [*a]\n", "recursive YAML alias", 1),
])
def test_refusals(text: str, message: str, line: int) -> None:
    with pytest.raises(DesiredStateError) as info:
        parse_yaml(text, "dir/compose.yaml")
    assert message in info.value.message
    assert info.value.location is not None
    assert info.value.location.file == "dir/compose.yaml"
    assert info.value.location.line == line
