"""The command line builds only the parser of the command it runs (``cli.main._command_in``):
the same arguments parse to the same values as with the whole parser, and anything unclear
(help, abbreviations, mistakes) is left to the whole parser."""

from __future__ import annotations

import pytest

from gitops_edge.cli.main import _command_in, _parser

SAME = [
    ["sync"],
    ["sync", "--full"],
    ["--config", "sync", "status"],  # a flag's value that looks like a command
    ["--config=/etc/a.yaml", "--log-level", "debug", "--no-daemon", "status", "--json"],
    ["status", "--config", "x.yaml", "--log-format", "json"],
    ["history", "--limit", "3", "--since", "2h"],
    ["fleet", "status", "--broker", "mqtt://b:1883"],
    ["validate", ".", "--device-id", "pump-7", "--label", "site=north"],
    ["lock", "--reason", "modem"],
    ["rollback", "web"],
]


@pytest.mark.parametrize("argv", SAME, ids=" ".join)
def test_the_one_command_parser_reads_what_the_whole_one_does(argv: list[str]) -> None:
    only = _command_in(argv)
    assert only is not None and only in argv
    assert vars(_parser(only).parse_args(argv)) == vars(_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["--version"], ["--conf", "x.yaml", "sync"], ["-h", "sync"], ["nosuch"], ["--log-level"],
], ids=" ".join)
def test_anything_unclear_gets_the_whole_parser(argv: list[str]) -> None:
    assert _command_in(argv) is None
