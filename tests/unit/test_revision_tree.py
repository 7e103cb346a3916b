"""Revision trees on a real file system, and the spec hash over mounted content."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from gitops_edge.adapters.files.desired_state import load_desired_state
from gitops_edge.adapters.files.revision_tree import ABSENT, RevisionTrees, digest
from gitops_edge.core.hashing import HASHED_WHEN_SET, NOT_HASHED, changed_mount_content, config_hash, hashed_fields
from gitops_edge.core.plan import plan_stack
from gitops_edge.core.serialize import canonical_json, to_data
from gitops_edge.errors import DesiredStateError
from gitops_edge.model.observed import ObservedContainer
from gitops_edge.model.spec import DesiredState, Mount, ServiceSpec, StackSpec

R1, R2 = "1" * 40, "2" * 40

COMPOSE = """\
services:
  web:
    image: app:1
    volumes:
      - ./app.conf:/etc/app.conf:ro
      - ../shared:/shared:ro
  db:
    image: app:1
    volumes:
      - ./db.conf:/etc/db.conf
      - data:/var/lib/db
  plain:
    image: app:1
volumes:
  data: {}
"""


def repo(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "clone"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / ".git" / "hooks").mkdir(parents=True, exist_ok=True)
    (root / ".git" / "config").write_text("[core]\n")
    return root


def base_files(conf: str = "good\n") -> dict[str, str]:
    return {
        "dev/web/compose.yaml": COMPOSE,
        "dev/web/app.conf": conf,
        "dev/web/db.conf": "db\n",
        "dev/web/.env": "X=1\n",
        "dev/shared/notes.txt": "shared\n",
        "dev/shared/run.sh": "#!/bin/sh\n",
    }


def load(clone: Path, trees: RevisionTrees, revision: str) -> DesiredState:
    return trees.materialize_state(load_desired_state(clone, "dev", revision), clone)


def modes(top: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = Path(dirpath, name)
            out[str(p.relative_to(top))] = p.lstat().st_mode & 0o777
    return out


def test_binds_point_into_a_read_only_tree_without_git(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    os.chmod(clone / "dev/shared/run.sh", 0o755)
    trees = RevisionTrees(tmp_path / "state" / "trees")
    web = load(clone, trees, R1).stacks[0].service("web")
    files = trees.files_root(R1, "web")
    assert [m.source for m in web.mounts] == [str(files / "dev/web/app.conf"), str(files / "dev/shared")]
    assert (files / "dev/web/app.conf").read_text() == "good\n"
    got = modes(files)
    assert got["dev/web/app.conf"] == 0o444
    assert got["dev/shared/run.sh"] == 0o555  # an executable stays executable, read-only
    assert got["dev/shared"] == got["dev"] == got["dev/web"] == 0o555
    assert "dev/web/compose.yaml" in got and "dev/web/.env" in got  # what the stack was loaded from
    assert not [p for p in got if ".git" in p.split("/")]
    assert web.mounts[0].content == f"dev/web/app.conf {digest(files / 'dev/web/app.conf')}"


def test_a_bind_of_the_repository_root_gets_everything_but_git(tmp_path: Path) -> None:
    files = base_files()
    files["dev/web/compose.yaml"] = "services:\n  web:\n    image: app:1\n    volumes: ['../..:/repo:ro']\n"
    clone = repo(tmp_path, files)
    (clone / "dev/sub/.git").mkdir(parents=True)  # a submodule's .git too
    trees = RevisionTrees(tmp_path / "state" / "trees")
    [mount] = load(clone, trees, R1).stacks[0].service("web").mounts
    assert mount.source == str(trees.files_root(R1, "web"))
    assert mount.content is not None and mount.content.startswith(". sha256:")
    seen = modes(Path(mount.source))
    assert "dev/shared/notes.txt" in seen
    assert not [p for p in seen if ".git" in p.split("/")]


@pytest.mark.parametrize("source", ["../../.git/hooks", "../../.git"])
def test_a_bind_into_git_is_refused(tmp_path: Path, source: str) -> None:
    files = base_files()
    files["dev/web/compose.yaml"] = f"services:\n  web:\n    image: app:1\n    volumes: ['{source}:/x']\n"
    clone = repo(tmp_path, files)
    trees = RevisionTrees(tmp_path / "state" / "trees")
    with pytest.raises(DesiredStateError, match=r"inside \.git"):
        load(clone, trees, R1)
    assert not (trees.base / R1).exists()


def test_a_bind_into_the_state_directory_is_refused(tmp_path: Path) -> None:
    files = base_files()
    state = tmp_path / "state"
    files["dev/web/compose.yaml"] = f"services:\n  web:\n    image: app:1\n    volumes: ['{state}/trees:/x']\n"
    clone = repo(tmp_path, files)
    with pytest.raises(DesiredStateError, match="state directory"):
        load(clone, RevisionTrees(state / "trees"), R1)


def test_a_bind_volume_into_the_state_directory_is_refused(tmp_path: Path) -> None:
    files = base_files()
    state = tmp_path / "state"
    files["dev/web/compose.yaml"] = (
        "services:\n  web:\n    image: app:1\n    volumes: ['vol:/x']\n"
        f"volumes:\n  vol:\n    driver_opts: {{type: none, o: bind, device: {state}/source/repo/.git}}\n"
    )
    clone = repo(tmp_path, files)
    with pytest.raises(DesiredStateError, match=r"volume device .* inside the agent's state directory"):
        load(clone, RevisionTrees(state / "trees"), R1)


def test_symlinks_out_of_the_repository_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    outside = tmp_path / "secret"
    outside.write_text("host secret\n")
    (clone / "dev/shared/leak").symlink_to(outside)  # inside a bound directory
    trees = RevisionTrees(tmp_path / "state" / "trees")
    with pytest.raises(DesiredStateError, match="out of the repository") as err:
        load(clone, trees, R1)
    assert "dev/shared/leak" in str(err.value)
    # the half-built tree was never renamed into place, and its temporary directory is gone
    assert list(trees.base.iterdir()) == []


def test_symlinks_into_git_are_refused(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    (clone / "dev/shared/hooks").symlink_to("../../.git/hooks")
    with pytest.raises(DesiredStateError, match=r"into \.git"):
        load(clone, RevisionTrees(tmp_path / "state" / "trees"), R1)


def test_symlinks_inside_the_repository_are_kept_as_links(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    (clone / "dev/shared/conf").symlink_to("../web/app.conf")
    trees = RevisionTrees(tmp_path / "state" / "trees")
    load(clone, trees, R1)
    link = trees.files_root(R1, "web") / "dev/shared/conf"
    assert link.is_symlink() and os.readlink(link) == "../web/app.conf"


def test_a_tree_is_built_once_and_reused_without_writing(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    trees = RevisionTrees(tmp_path / "state" / "trees")
    first = load(clone, trees, R1)
    stack_dir = trees.base / R1 / "web"
    before = stack_dir.stat().st_ino, (stack_dir / "manifest.json").stat().st_mtime_ns
    (clone / "dev/web/app.conf").chmod(0o644)
    (clone / "dev/web/app.conf").write_text("edited in the clone\n")  # never at the same commit, but
    again = load(clone, trees, R1)  # the tree of R1 is what R1 looked like when first built
    assert again == first
    assert (stack_dir.stat().st_ino, (stack_dir / "manifest.json").stat().st_mtime_ns) == before


def test_an_existing_tree_survives_a_failed_rebuild(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    trees = RevisionTrees(tmp_path / "state" / "trees")
    trees.materialize(clone, R1, "web", ["dev/web/app.conf"])
    (clone / "dev/extra").mkdir()
    (clone / "dev/extra/leak").symlink_to("/etc/passwd")
    with pytest.raises(DesiredStateError):
        trees.materialize(clone, R1, "web", ["dev/extra"])  # needs more paths: a rebuild, which fails
    assert (trees.files_root(R1, "web") / "dev/web/app.conf").read_text() == "good\n"
    assert sorted(p.name for p in trees.base.iterdir()) == [R1]


def test_absent_sources_are_left_to_docker(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    trees = RevisionTrees(tmp_path / "state" / "trees")
    assert trees.materialize(clone, R1, "web", ["dev/web/data"]) == {"dev/web/data": ABSENT}


def test_collect_keeps_what_containers_applied_and_good_revisions_need(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    trees = RevisionTrees(tmp_path / "state" / "trees")
    revs = [str(i) * 40 for i in range(1, 9)]
    for rev in revs:
        for stack in ("a", "b"):
            trees.materialize(clone, rev, stack, ["dev/web/app.conf"])
    bound = str(trees.files_root(revs[1], "b") / "dev/web/app.conf")
    containers = [
        ObservedContainer("c1", "a-web-1", "a", "web", 1, "running", revision=revs[0]),
        # a kept container (rollback target): its binds count, whatever its label says
        ObservedContainer("c2", "b-web-1-gitops-edge-kept", "b", "web", 1, "exited", kept=True, binds=(bound,)),
    ]
    (trees.base / ".trash-0123").mkdir()  # a crash during an earlier removal
    old_tmp = trees.base / ".tmp-abc"
    old_tmp.mkdir()
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))
    new_tmp = trees.base / ".tmp-def"  # someone building right now
    new_tmp.mkdir()
    keep = trees.users(containers, {"a": revs[2]}, {"a": revs[2:4], "b": [revs[4]]}, current=revs[7])
    trees.collect(keep)
    on_disk = {(r.name, s.name) for r in trees.base.iterdir() if not r.name.startswith(".") for s in r.iterdir()}
    assert on_disk == {(revs[0], "a"), (revs[1], "b"), (revs[2], "a"), (revs[3], "a"), (revs[4], "b"),
                       (revs[7], "a"), (revs[7], "b")}
    assert sorted(p.name for p in trees.base.iterdir() if p.name.startswith(".")) == [".tmp-def"]
    assert not (trees.base / revs[5]).exists()  # empty revision directories go too


# -- the spec hash ---------------------------------------------------------------------------
def test_same_content_same_hash_changed_file_changes_only_its_services(tmp_path: Path) -> None:
    trees = RevisionTrees(tmp_path / "state" / "trees")
    one = load(repo(tmp_path / "1", base_files()), trees, R1).stacks[0]
    same = load(repo(tmp_path / "2", base_files()), trees, R2).stacks[0]
    # different trees (host paths), same content: nothing to recreate
    assert one.service("web").mounts[0].source != same.service("web").mounts[0].source
    assert all(config_hash(one, s) == config_hash(same, same.service(s.name)) for s in one.services)

    changed = load(repo(tmp_path / "3", base_files("better\n")), trees, "3" * 40).stacks[0]
    differs = {s.name for s in one.services if config_hash(one, s) != config_hash(changed, changed.service(s.name))}
    assert differs == {"web"}
    assert changed_mount_content(one.service("web"), changed.service("web")) == ["dev/web/app.conf"]
    sp = plan_stack(changed, "3" * 40, [
        ObservedContainer(f"id-{s.name}", f"web-{s.name}-1", "web", s.name, 1, "running", image="app@1",
                          config_hash=config_hash(one, s), managed=True) for s in one.services
    ], {s.name: "app@1" for s in changed.services}, previous=one)
    assert [(a.service, a.reason) for a in sp.actions] == [("web", "mounted content changed: dev/web/app.conf")]


def test_specs_without_repository_binds_hash_as_before() -> None:
    svc = ServiceSpec(name="s", image="i", mounts=(Mount(type="volume", target="/d", source="data"),
                                                   Mount(type="bind", target="/h", source="/srv/h")))
    stack = StackSpec(name="st", path="st", compose_file="st/compose.yaml", services=(svc,))
    fields = hashed_fields(svc)
    assert all("content" not in m and "source" in m for m in fields["mounts"])  # type: ignore[attr-defined]
    # the formula before revision trees: every field as data, mounts included verbatim
    before = {f.name: to_data(getattr(svc, f.name)) for f in dataclasses.fields(svc) if f.name not in NOT_HASHED}
    for m in before["mounts"]:
        del m["content"]
    for key in HASHED_WHEN_SET:  # hooks came later, hashed only when a service has some
        del before[key]
    used = {"service": before, "networks": [], "volumes": ["data"]}
    assert config_hash(stack, svc) == hashlib.sha256(canonical_json(used).encode()).hexdigest()
    with_content = replace(svc, mounts=(svc.mounts[0], replace(svc.mounts[1], content="h sha256:00")))
    assert config_hash(stack, with_content) != config_hash(stack, svc)
    moved = replace(with_content, mounts=(svc.mounts[0], replace(with_content.mounts[1], source="/elsewhere")))
    assert config_hash(stack, moved) == config_hash(stack, with_content)  # the tree path does not count


def test_a_tree_asked_for_more_paths_keeps_the_old_ones(tmp_path: Path) -> None:
    clone = repo(tmp_path, base_files())
    trees = RevisionTrees(tmp_path / "state" / "trees")
    trees.materialize(clone, R1, "web", ["dev/web/app.conf"])
    got = trees.materialize(clone, R1, "web", ["dev/web/db.conf"])
    assert list(got) == ["dev/web/db.conf"]
    files = trees.files_root(R1, "web")
    assert (files / "dev/web/app.conf").read_text() == "good\n"  # a container may still bind it
    assert (files / "dev/web/db.conf").read_text() == "db\n"
    assert sorted(p.name for p in trees.base.iterdir()) == [R1]


def test_env_files_are_never_read_from_dot_git(tmp_path: Path) -> None:
    """``env_file: ../../.git/config`` (or a symlink to it) would copy Git's files into a container's environment."""
    from gitops_edge.adapters.files.stack_files import load_stack
    from gitops_edge.errors import DesiredStateError

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text("[core]\n\tfsmonitor = evil\n")
    stack = repo / "devices" / "web"
    stack.mkdir(parents=True)
    (stack / "compose.yaml").write_text("services: {web: {image: busybox, env_file: ../../.git/config}}\n")
    with pytest.raises(DesiredStateError, match=r"\.git"):
        load_stack(repo, stack)
    (stack / "linked.env").symlink_to(repo / ".git" / "config")
    (stack / "compose.yaml").write_text("services: {web: {image: busybox, env_file: linked.env}}\n")
    with pytest.raises(DesiredStateError, match=r"\.git"):
        load_stack(repo, stack)
