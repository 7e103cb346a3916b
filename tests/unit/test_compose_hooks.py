"""post_start / pre_stop in the loader, the spec hash and the device policy (pure code)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gitops_edge.adapters.files.yaml_reader import parse_yaml
from gitops_edge.core.compose import StackErrors, build_stack
from gitops_edge.core.hashing import changed_fields, config_hash
from gitops_edge.core.security import check_stack
from gitops_edge.model.spec import ServiceHook, ServiceSpec, StackSpec
from gitops_edge.model.trust import SecurityPolicy

FILE = "stacks/st/compose.yaml"


def load(text: str, env: dict[str, str] | None = None) -> StackSpec:
    doc = parse_yaml(text, FILE)
    return build_stack(doc.data, doc.lines, name="st", stack_dir="stacks/st", compose_file=FILE, root="/co",
                       env=env or {}, read_text=lambda rel: None)  # fmt: skip


def test_hooks_load_as_compose_reads_them() -> None:
    web = load("""\
services:
  web:
    image: app:1
    post_start:
      - command: echo "hello world" ${WHO}
        user: root
        privileged: "false"
        working_dir: /srv
        environment: {B: 2, A: "${WHO}", C: null}
      - command: [sh, -c, "touch /ready"]
        environment: [X=1, Y]
        x-note: ignored like every x- key
    pre_stop:
      - command: sync
""", env={"WHO": "me", "Y": "from the host"}).service("web")
    assert web.post_start == (
        ServiceHook(("echo", "hello world", "me"), "root", False, "/srv", (("A", "me"), ("B", "2"), ("C", None))),
        # a bare name is not filled in from the environment (unlike a service's own): unset in the exec
        ServiceHook(("sh", "-c", "touch /ready"), environment=(("X", "1"), ("Y", None))),
    )
    assert web.pre_stop == (ServiceHook(("sync",)),)


@pytest.mark.parametrize(("hooks", "where", "line", "message"), [
    ("post_start: {command: x}", "services.web.post_start", 4, "must be a list"),
    ("pre_stop:", "services.web.pre_stop", 4, "must be a list, not a null"),
    ("post_start: [x]", "services.web.post_start[0]", 4, "must be a mapping"),
    ("post_start:\n      - user: root", "services.web.post_start[0]", 5, "needs a 'command'"),
    ("post_start:\n      - command: x\n        shell: sh", "services.web.post_start[0].shell", 6, "unknown key"),
    ("post_start:\n      - command: ''", "services.web.post_start[0].command", 5, "must not be empty"),
    ("pre_stop:\n      - command: []", "services.web.pre_stop[0].command", 5, "must not be empty"),
    ("pre_stop:\n      - command: {a: b}", "services.web.pre_stop[0].command", 5, "must be a list"),
    ("pre_stop:\n      - command: \"it's\"", "services.web.pre_stop[0].command", 5, "cannot split"),
    ("post_start:\n      - command: x\n        user: 0", "services.web.post_start[0].user", 6, "must be a string"),
    ("post_start:\n      - command: x\n        privileged: maybe", "services.web.post_start[0].privileged", 6,
     "must be a boolean"),
    ("post_start:\n      - command: x\n        environment: 3", "services.web.post_start[0].environment", 6,
     "list or a mapping"),
])
def test_bad_hooks_are_located(hooks: str, where: str, line: int, message: str) -> None:
    with pytest.raises(StackErrors) as info:
        load(f"services:\n  web:\n    image: app:1\n    {hooks}\n")
    loc = info.value.location
    assert loc is not None and (loc.file, loc.line, loc.key) == (FILE, line, where)
    assert message in info.value.message


def test_extends_appends_hooks_and_keeps_repeats() -> None:
    """Compose 2.40 appends the extending service's hooks to the base's, a repeat included."""
    child = load("""\
services:
  base:
    image: app:1
    post_start: [{command: a}, {command: b}]
  child:
    extends: base
    post_start: [{command: c}, {command: a}]
""").service("child")
    assert [h.command for h in child.post_start] == [("a",), ("b",), ("c",), ("a",)]


def test_a_changed_hook_changes_the_hash_and_no_hook_keeps_the_old_one() -> None:
    """Compose's config hash covers the hooks (``docker compose up`` recreates on a change)."""
    stack = StackSpec("st", "st", "st/compose.yaml")
    plain = ServiceSpec("web", "app:1")
    hooked = replace(plain, pre_stop=(ServiceHook(("sync",)),))
    edited = replace(plain, pre_stop=(ServiceHook(("sync",), user="1000"),))
    hashes = {config_hash(stack, s) for s in (plain, hooked, edited)}
    assert len(hashes) == 3
    assert changed_fields(plain, hooked) == ["pre_stop"]  # present on one side only
    assert changed_fields(hooked, plain) == ["pre_stop"]
    # hashed only when set: the hash of a service without hooks is the formula from before hooks
    assert config_hash(stack, plain) == config_hash(stack, replace(plain, post_start=(), pre_stop=()))


def test_a_privileged_hook_needs_allow_privileged() -> None:
    web = ServiceSpec("web", "app:1", post_start=(ServiceHook(("id",)), ServiceHook(("id",), privileged=True)),
                      pre_stop=(ServiceHook(("id",), privileged=True),))
    stack = StackSpec("st", "st", "st/compose.yaml", services=(web,))
    found = check_stack(stack, SecurityPolicy(), "/co")
    assert [(f.path, f.policy_key) for f in found] == [
        (("services", "web", "post_start", 1, "privileged"), "allow_privileged"),
        (("services", "web", "pre_stop", 0, "privileged"), "allow_privileged"),
    ]
    assert "allow with security.allow_privileged" in found[0].message()
    assert check_stack(stack, SecurityPolicy(allow_privileged=True), "/co") == []
    # an unprivileged hook, as root in the container, reaches nothing of the host
    plain = replace(web, post_start=(ServiceHook(("id",), user="root"),), pre_stop=())
    assert check_stack(replace(stack, services=(plain,)), SecurityPolicy(), "/co") == []
