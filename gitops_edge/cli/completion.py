"""``gitops-edge completion bash|zsh``: a completion script generated from the argparse parser.

Generated, not written by hand, so a new command or flag completes the day it
is added. Commands and sub-commands complete by name, flags per command,
flags with fixed choices (``--log-level``) by their values, and the rest of
the words as file names.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field


@dataclass
class _Command:
    """One level of the parser: its flags, their choices, the flags taking a value, and sub-commands."""

    flags: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)
    takes_value: list[str] = field(default_factory=list)
    help: str = ""
    sub: dict[str, _Command] = field(default_factory=dict)


def _walk(parser: argparse.ArgumentParser, help_text: str = "") -> _Command:
    cmd = _Command(help=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sp in action.choices.items():
                cmd.sub[name] = _walk(sp, str(helps.get(name, "")))
            continue
        for opt in action.option_strings:
            if not opt.startswith("--"):
                continue
            cmd.flags.append(opt)
            if action.nargs != 0:
                cmd.takes_value.append(opt)
            if action.choices:
                cmd.choices[opt] = [str(c) for c in action.choices]
    return cmd


def _words(items: list[str]) -> str:
    return shlex.quote(" ".join(items))


def bash(parser: argparse.ArgumentParser) -> str:
    """A bash script: ``source <(gitops-edge completion bash)``."""
    root = _walk(parser)
    lines = [
        "# gitops-edge completion for bash: source <(gitops-edge completion bash)",
        "_gitops_edge() {",
        '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" path="" skip=0 w i',
        "  for ((i = 1; i < COMP_CWORD; i++)); do",
        '    w="${COMP_WORDS[i]}"',
        '    if ((skip)); then skip=0; continue; fi',
        "    case \"$w\" in",
        f"      {'|'.join(sorted(_all_value_flags(root)))}) skip=1 ;;",
        "      -*) ;;",
        '      *) path="$path/$w" ;;',
        "    esac",
        "  done",
        '  case "$prev" in',
    ]
    for flag, values in sorted(_all_choices(root).items()):
        lines.append(f'    {flag}) COMPREPLY=($(compgen -W {_words(values)} -- "$cur")); return ;;')
    lines += ['  esac', '  case "$path" in']
    for path, cmd in _levels(root):
        words = sorted(cmd.sub) + sorted(cmd.flags)
        lines.append(f'    "{path}") COMPREPLY=($(compgen -W {_words(words)} -- "$cur")) ;;')
    lines += [
        '    *) COMPREPLY=($(compgen -f -- "$cur")) ;;',
        "  esac",
        "}",
        "complete -o default -F _gitops_edge gitops-edge",
        "",
    ]
    return "\n".join(lines)


def zsh(parser: argparse.ArgumentParser) -> str:
    """A zsh script: ``source <(gitops-edge completion zsh)`` or saved as ``_gitops-edge`` on $fpath."""
    root = _walk(parser)
    lines = [
        "#compdef gitops-edge",
        "# gitops-edge completion for zsh: source <(gitops-edge completion zsh)",
        "_gitops_edge() {",
        '  local path="" skip=0 w i',
        "  for ((i = 2; i < CURRENT; i++)); do",
        '    w="${words[i]}"',
        '    if ((skip)); then skip=0; continue; fi',
        "    case \"$w\" in",
        f"      {'|'.join(sorted(_all_value_flags(root)))}) skip=1 ;;",
        "      -*) ;;",
        '      *) path="$path/$w" ;;',
        "    esac",
        "  done",
        '  case "${words[CURRENT-1]}" in',
    ]
    for flag, values in sorted(_all_choices(root).items()):
        lines.append(f"    {flag}) compadd -- {' '.join(shlex.quote(v) for v in values)}; return ;;")
    lines += ['  esac', '  case "$path" in']
    for path, cmd in _levels(root):
        described = [f"{name}:{c.help}".replace("'", "") for name, c in sorted(cmd.sub.items())]
        body = []
        if described:
            body.append("local -a cmds; cmds=(" + " ".join(shlex.quote(d) for d in described) + ")")
            body.append("_describe command cmds")
        if cmd.flags:
            body.append("compadd -- " + " ".join(sorted(cmd.flags)))
        lines.append(f'    "{path}") ' + "; ".join(body or ["_files"]) + " ;;")
    lines += ["    *) _files ;;", "  esac", "}", 'compdef _gitops_edge gitops-edge 2>/dev/null || true', ""]
    return "\n".join(lines)


def _levels(cmd: _Command, path: str = "") -> list[tuple[str, _Command]]:
    out = [(path, cmd)]
    for name, sub in sorted(cmd.sub.items()):
        out += _levels(sub, f"{path}/{name}")
    return out


def _all_value_flags(cmd: _Command) -> set[str]:
    found = set(cmd.takes_value)
    for sub in cmd.sub.values():
        found |= _all_value_flags(sub)
    return found


def _all_choices(cmd: _Command) -> dict[str, list[str]]:
    found = dict(cmd.choices)
    for sub in cmd.sub.values():
        found.update(_all_choices(sub))
    return found


SHELLS = {"bash": bash, "zsh": zsh}
