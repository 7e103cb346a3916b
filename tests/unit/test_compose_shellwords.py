"""Compose's word splitting of string commands (the oracle comparison is in tests/integration)."""

from __future__ import annotations

import pytest

from gitops_edge.core.compose.shellwords import split_words


@pytest.mark.parametrize(("line", "words"), [
    ("echo hi; rm -rf /", ["echo", "hi"]),
    ("run 2>/dev/null", ["run"]),
    ("run a2>x", ["run", "a2"]),
    ("'a;b' \"c|d\" e\\&f", ["a;b", "c|d", "e&f"]),
    ('"a\\b" \'a\\b\'', ["ab", "a\\b"]),
    ("'' x", ["", "x"]),
    ("echo $(a; b) `c; d`", ["echo", "$(a; b)", "`c; d`"]),
])
def test_split(line: str, words: list[str]) -> None:
    assert split_words(line) == words


@pytest.mark.parametrize("line", ["x (y", "x )y", "x 'y", "x \\"])
def test_refused(line: str) -> None:
    with pytest.raises(ValueError, match="invalid command line string"):
        split_words(line)
