"""``post_start`` and ``pre_stop``: lifecycle hooks, as compose-spec and Compose 2.40 read them.

Each is a list of mappings ``{command, user, privileged, working_dir,
environment}`` (``x-`` keys ignored). Compose splits a string command as a
shell would and keeps an ``environment`` entry without a value as a bare
name (it is *not* filled in from the host, unlike a service's own
``environment``): in the exec that name is unset. An empty command is
accepted by ``docker compose config`` but fails when the exec is made, so it
is refused here, where the error can still name its line.
"""

from __future__ import annotations

from gitops_edge.core.compose.fields import (
    as_bool,
    as_dict_or_list,
    as_mapping,
    as_str,
    as_str_list,
    check_keys,
    type_name,
)
from gitops_edge.core.compose.problems import KeyPath, Problems
from gitops_edge.core.compose.shellwords import split_words
from gitops_edge.model.spec import ServiceHook

HOOK_KEYS = ("command", "user", "privileged", "working_dir", "environment")


def parse_hooks(p: Problems, path: KeyPath, value: object) -> tuple[ServiceHook, ...]:
    """``services.<name>.post_start`` (or ``pre_stop``): a list of hooks, in the order they run."""
    if not isinstance(value, list):
        p.add(path, f"must be a list, not a {type_name(value)}")
        return ()
    hooks = []
    for i, raw in enumerate(value):
        hook = _hook(p, (*path, i), raw)
        if hook is not None:
            hooks.append(hook)
    return tuple(hooks)


def _hook(p: Problems, path: KeyPath, raw: object) -> ServiceHook | None:
    entry = as_mapping(p, path, raw)
    if entry is None:
        return None
    before = len(p.errors)
    check_keys(p, path, entry, HOOK_KEYS)
    if "command" not in entry:
        p.add(path, "a hook needs a 'command'")
        return None
    command = _command(p, (*path, "command"), entry["command"])
    user = as_str(p, (*path, "user"), entry["user"]) if entry.get("user") is not None else None
    workdir = None
    if entry.get("working_dir") is not None:
        workdir = as_str(p, (*path, "working_dir"), entry["working_dir"])
    privileged = False
    if entry.get("privileged") is not None:
        privileged = bool(as_bool(p, (*path, "privileged"), entry["privileged"]))
    env: dict[str, str | None] = {}
    if entry.get("environment") is not None:
        env = as_dict_or_list(p, (*path, "environment"), entry["environment"]) or {}
    if command is None or len(p.errors) != before:
        return None
    return ServiceHook(command, user, privileged, workdir, tuple(sorted(env.items())))


def _command(p: Problems, path: KeyPath, value: object) -> tuple[str, ...] | None:
    """A string is split as a shell would; a list is taken as is; empty is refused."""
    if isinstance(value, str):
        try:
            words: tuple[str, ...] | None = tuple(split_words(value))
        except ValueError as exc:
            p.add(path, f"cannot split command: {exc}")
            return None
    else:
        words = as_str_list(p, path, value)
    if words is not None and not words:
        p.add(path, "a hook's command must not be empty (the engine refuses an exec without one)")
        return None
    return words
