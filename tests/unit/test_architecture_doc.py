"""docs/architecture.md stays true to the code it describes.

The package tree must list exactly the package directories and top-level
modules of ``gitops_edge``; the layer line must be the import-linter layers
contract of pyproject.toml, in its order; the error tree must be the one kept in
``gitops_edge/errors.py``; every update step must be named, in order.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import tomllib
from pathlib import Path

import gitops_edge.errors as errors_module
from gitops_edge.errors import EdgeError
from gitops_edge.model.step import Step

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "gitops_edge"

# The named steps of one update, in the order the engine's Step enum lists them.
STEPS = [s.name for s in Step]


def _section(heading: str) -> str:
    text = DOC.read_text()
    parts = re.split(r"^## ", text, flags=re.M)
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        if title.strip() == heading:
            return body
    raise AssertionError(f"docs/architecture.md has no '## {heading}' section")


def _first_block(heading: str) -> str:
    m = re.search(r"^```[a-z]*\n(.*?)^```", _section(heading), re.S | re.M)
    assert m is not None, f"docs/architecture.md: no code block under '## {heading}'"
    return m.group(1)


def _tree_paths() -> set[str]:
    """Paths in the package tree, rebuilt from its two-space indentation."""
    lines = _first_block("Packages").splitlines()
    assert lines[0] == "gitops_edge/", lines[0]
    out: set[str] = set()
    stack: list[str] = []
    for line in lines[1:]:
        m = re.match(r"( *)([\w.]+/?)(?:\s|$)", line)
        if m is None or len(m.group(1)) % 2 or not m.group(2).strip():
            continue  # a continuation line of a description
        depth = len(m.group(1)) // 2 - 1
        name = m.group(2)
        if depth < 0 or depth > len(stack):
            continue
        stack[depth:] = [name.rstrip("/")]
        out.add("/".join(stack) + ("/" if name.endswith("/") else ""))
    return out


def test_the_package_tree_lists_every_package_and_top_level_module() -> None:
    packages = {
        str(d.relative_to(PACKAGE)) + "/"
        for d in PACKAGE.rglob("*")
        if d.is_dir() and (d / "__init__.py").exists()
    }
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    listed = _tree_paths()
    assert packages <= listed, f"missing from the tree: {sorted(packages - listed)}"
    assert modules <= listed, f"missing from the tree: {sorted(modules - listed)}"
    assert listed <= packages | modules, f"in the tree but not in gitops_edge/: {sorted(listed - packages - modules)}"


def test_the_layer_line_is_the_import_linter_contract_in_order() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    expected = [" | ".join(m.strip().removeprefix("gitops_edge.") for m in layer.split("|")) for layer in layers]
    [line] = [ln for ln in _first_block("Layers").splitlines() if " > " in ln]
    assert [part.strip() for part in line.split(" > ")] == expected


def _docstring_tree() -> str:
    doc = errors_module.__doc__ or ""
    after = doc.split("::\n", 1)[1]
    block = re.match(r"\n?((?:    .*\n|\n)+?)\n(?! )", after)
    assert block is not None
    return textwrap.dedent(block.group(1)).strip("\n") + "\n"


def test_the_error_tree_is_the_one_in_errors_py() -> None:
    assert _first_block("Errors") == _docstring_tree()


def test_every_error_class_is_in_the_tree() -> None:
    tree = _docstring_tree()
    classes = [
        name for name, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, EdgeError) and cls.__module__ == errors_module.__name__
    ]
    assert classes and all(re.search(rf"\b{name}\b", tree) for name in classes), classes


def test_every_update_step_is_named_in_order() -> None:
    section = _section("An update, step by step")
    rows = re.findall(r"^\| ([A-Z]+) \|", section, re.M)
    assert rows == STEPS
