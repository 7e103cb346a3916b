"""A string ``command``/``entrypoint``/hook ``command`` splits into the words Compose 2.40 runs.

Compose does not split like a POSIX shell (see core/compose/shellwords.py):
it stops at an unquoted ``;``, ``&``, ``|``, ``<``, ``>``. Each string goes
through ``docker compose config --format json`` (the real binary) and the
loader; the words must be equal, and a string Compose refuses must be refused
at its key.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_edge.adapters.files.desired_state import load_desired_state
from gitops_edge.errors import DesiredStateError

ACCEPTED = [
    "echo hi; rm -rf /data", "a|b c", "a&&b", "sleep 1 & wait", "x 2>err y", "x 2> err", "x a2>b",
    "x 12x>y", "x <in", "x>y", '"a;b" c', "'a|b' c", "a\\;b c", 'a\\ b "c\\"d" \'e\\f\'',
    '"a\\tb" a\\nb', "echo `date; x` y", "echo $(date; x) y", "\"\" '' x", "a\tb\n c",
    'echo "$HOME"', "sh -c 'exit 3' || true",
]
REFUSED = ["x )y z", "x (y", "x $(y", "x 'open", 'x "open', "x \\"]


def _compose_words(compose_bin: str, stack: Path) -> dict[str, Any]:
    out = subprocess.run([compose_bin, "config", "--format", "json"], cwd=stack,
                         env={"PATH": os.environ.get("PATH", "/usr/bin")},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    services: dict[str, Any] = json.loads(out.stdout)["services"]
    return services


def _unescape(words: list[str] | None) -> tuple[str, ...] | None:
    """``config`` writes a literal ``$`` as ``$$`` (its output is interpolated again when read)."""
    return None if words is None else tuple(w.replace("$$", "$") for w in words)


def test_string_commands_split_as_compose_splits_them(tmp_path: Path, compose_bin: str) -> None:
    stack = tmp_path / "stacks" / "shwords"
    stack.mkdir(parents=True)
    services = {
        f"s{i}": {"image": "alpine", "command": text.replace("$", "$$"),
                  "entrypoint": text.replace("$", "$$"),
                  "post_start": [{"command": text.replace("$", "$$")}]}
        for i, text in enumerate(ACCEPTED)
    }
    (stack / "compose.yaml").write_text(yaml.safe_dump({"services": services}))
    oracle = _compose_words(compose_bin, stack)
    ours = {s.name: s for s in load_desired_state(tmp_path, "stacks", revision="r1").stacks[0].services}
    for i, text in enumerate(ACCEPTED):
        want, got = oracle[f"s{i}"], ours[f"s{i}"]
        assert got.command == _unescape(want["command"]), text
        assert got.entrypoint == _unescape(want["entrypoint"]), text
        assert got.post_start[0].command == _unescape(want["post_start"][0]["command"]), text
    assert ours["s0"].command == ("echo", "hi")  # the rest of the line is dropped, as in Compose


@pytest.mark.parametrize("key", ["command", "entrypoint", "hook"])
@pytest.mark.parametrize("text", REFUSED)
def test_strings_compose_refuses_are_refused_at_their_key(
    tmp_path: Path, compose_bin: str, key: str, text: str
) -> None:
    stack = tmp_path / "stacks" / "shwords"
    stack.mkdir(parents=True)
    svc: dict[str, Any] = {"image": "alpine"}
    if key == "hook":
        svc["post_start"] = [{"command": text}]
    else:
        svc[key] = text
    (stack / "compose.yaml").write_text(yaml.safe_dump({"services": {"web": svc}}))
    out = subprocess.run([compose_bin, "config", "--format", "json"], cwd=stack,
                         env={"PATH": os.environ.get("PATH", "/usr/bin")},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stdout
    with pytest.raises(DesiredStateError) as info:
        load_desired_state(tmp_path, "stacks", revision="r1")
    where = "services.web.post_start[0].command" if key == "hook" else f"services.web.{key}"
    assert info.value.location is not None and info.value.location.key == where, str(info.value)
    assert "cannot split command" in str(info.value)
