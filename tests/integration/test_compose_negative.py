"""Bad desired state: one clear, located error each; Compose agrees where it can judge.

Each case is a small tree written to a temporary repository. The error must
be a DesiredStateError whose one-line text names the repo-relative file, the
line and the key path. Where ``docker compose config`` has an opinion on the
same file, it must refuse it too (we are never more lenient than the oracle).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitops_edge.adapters.files.desired_state import load_desired_state, validate_tree
from gitops_edge.errors import DesiredStateError


@dataclass(frozen=True)
class Bad:
    id: str
    compose: str
    expect: str  # substring of the message
    line: int | None
    key: str | None
    oracle_rejects: bool  # does `docker compose config` refuse it too?
    extra: tuple[tuple[str, str], ...] = ()  # other files, relative to the stack dir
    file: str = "compose.yaml"  # the file the error names, relative to the stack dir


CASES = [
    Bad("unknown-key", "services:\n  web:\n    image: nginx\n    imagee: typo\n",
        "unknown key 'imagee'", 4, "services.web.imagee", True),
    Bad("unknown-top-level", "services:\n  web:\n    image: nginx\nservice: {}\n",
        "unknown key 'service'", 4, "service", True),
    Bad("wrong-type", "services:\n  web:\n    image: nginx\n    ports: \"80:80\"\n",
        "must be a list", 4, "services.web.ports", True),
    Bad("bad-port", "services:\n  web:\n    image: nginx\n    ports:\n      - \"80x\"\n",
        "invalid port '80x'", 5, "services.web.ports[0]", True),
    Bad("cycle",
        "services:\n  a:\n    image: x\n    depends_on: [b]\n"
        "  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n",
        "dependency cycle: a -> b -> c -> a", 4, "services.a.depends_on", True),
    Bad("undefined-network",
        "services:\n  web:\n    image: nginx\n    networks: [front]\n",
        "undefined network 'front'", 4, "services.web.networks[0]", True),
    Bad("undefined-volume",
        "services:\n  web:\n    image: nginx\n    volumes:\n      - data:/data\n",
        "undefined volume 'data'", 5, "services.web.volumes[0]", True),
    Bad("undefined-dependency",
        "services:\n  web:\n    image: nginx\n    depends_on: [db]\n",
        "undefined service 'db'", 4, "services.web.depends_on[0]", True),
    Bad("required-variable",
        "services:\n  web:\n    image: \"nginx:${X:?need X}\"\n",
        "required variable X is missing a value: need X", 3, "services.web.image", True),
    Bad("bad-interpolation", "services:\n  web:\n    image: \"nginx:${X\"\n",
        "invalid interpolation format", 3, "services.web.image", True),
    Bad("duplicate-key", "services:\n  web:\n    image: nginx\n    image: httpd\n",
        "duplicate key 'image'", 4, "services.web.image", True),
    Bad("bind-escape",
        "services:\n  web:\n    image: nginx\n    volumes:\n      - ../../../etc:/host-etc\n",
        "leaves the repository", 5, "services.web.volumes[0]", False),
    Bad("long-bind-escape",
        "services:\n  web:\n    image: nginx\n    volumes:\n      - type: bind\n"
        "        source: ../../../etc\n        target: /x\n",
        "leaves the repository", 6, "services.web.volumes[0].source", False),
    Bad("env-file-escape",
        "services:\n  web:\n    image: nginx\n    env_file: ../../../secret.env\n",
        "leaves the repository", 4, "services.web.env_file", False),
    Bad("env-file-missing",
        "services:\n  web:\n    image: nginx\n    env_file: [app.env]\n",
        "env file 'stacks/case/app.env' not found", 4, "services.web.env_file[0]", True),
    Bad("build-unsupported",
        "services:\n  web:\n    build: .\n",
        "gitops-edge does not build images", 3, "services.web.build", False),
    Bad("name-mismatch", "name: other\nservices:\n  web:\n    image: nginx\n",
        "differs from the stack directory name", 1, "name", False),
    Bad("bad-duration",
        "services:\n  web:\n    image: nginx\n    healthcheck:\n      test: [CMD, 'true']\n"
        "      interval: 10\n",
        "must be a duration string", 6, "services.web.healthcheck.interval", True),
    Bad("bad-size", "services:\n  web:\n    image: nginx\n    mem_limit: lots\n",
        "invalid size 'lots'", 4, "services.web.mem_limit", True),
    Bad("bad-restart", "services:\n  web:\n    image: nginx\n    restart: sometimes\n",
        "invalid restart policy", 4, "services.web.restart", False),
    Bad("multi-document", "services:\n  web:\n    image: nginx\n---\nservices: {}\n",
        "several YAML documents", 4, None, False),
    Bad("syntax-error", "services:\n  web:\n    image: [nginx\n",
        "YAML syntax error", 4, None, True),
    Bad("top-level-list", "- services\n", "top level must be a mapping", 1, None, True),
    Bad("network-mode-and-networks",
        "services:\n  web:\n    image: nginx\n    network_mode: host\n    networks: [default]\n",
        "cannot be combined", 5, "services.web.networks", True),
    Bad("bad-dotenv", "services:\n  web:\n    image: \"nginx:${TAG}\"\n",
        "unterminated quoted value", 2, None, True,
        extra=((".env", "OK=1\nTAG=\"oops\n"),)),
    Bad("dotenv-compose-file", "services:\n  web:\n    image: nginx\n",
        "COMPOSE_FILE=other.yaml names other compose files", 2, None, True,
        extra=((".env", "A=1\nCOMPOSE_FILE=other.yaml\n"),)),
    Bad("dotenv-project-name", "services:\n  web:\n    image: nginx\n",
        "COMPOSE_PROJECT_NAME=other differs", 1, None, False,
        extra=((".env", "COMPOSE_PROJECT_NAME=other\n"),)),
    Bad("distinct-memory",
        "services:\n  web:\n    image: nginx\n    mem_limit: 1g\n    deploy:\n      resources:\n"
        "        limits:\n          memory: 2g\n",
        "can't set distinct values", 8, "services.web.deploy.resources.limits.memory", True),
    Bad("bad-ipc-service", "services:\n  web:\n    image: nginx\n    ipc: service:ghost\n",
        "undefined service 'ghost'", 4, "services.web.ipc", True),
    Bad("include-escape", "include:\n  - ../../../outside.yaml\nservices: {}\n",
        "leaves the repository", 2, "include[0]", True),
    Bad("include-missing", "include:\n  - sub/none.yaml\nservices: {}\n",
        "included file 'stacks/case/sub/none.yaml' not found", 2, "include[0]", True),
    Bad("include-cycle", "include:\n  - sub/a.yaml\nservices:\n  web:\n    image: nginx\n",
        "include cycle", 1, "include[0]", True, extra=(("sub/a.yaml", "include: [../compose.yaml]\n"),),
        file="sub/a.yaml"),
    Bad("include-duplicate", "include:\n  - sub/a.yaml\nservices:\n  web:\n    image: nginx\n",
        "services.web is also defined in stacks/case/compose.yaml", 2, "services.web", True,
        extra=(("sub/a.yaml", "services:\n  web:\n    image: httpd\n"),), file="sub/a.yaml"),
    Bad("extends-cycle",
        "services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n",
        "extends cycle", 7, "services.b.extends", True),
    Bad("extends-undefined", "services:\n  a:\n    image: x\n    extends: ghost\n",
        "extends undefined service 'ghost'", 4, "services.a.extends", True),
    Bad("extends-missing",
        "services:\n  a:\n    extends:\n      service: b\n      file: base.yaml\n",
        "stacks/case/base.yaml: cannot read file", 5, "services.a.extends.file", True),
    Bad("extends-escape",
        "services:\n  a:\n    extends:\n      service: b\n      file: ../../../../etc/base.yaml\n",
        "leaves the repository", 5, "services.a.extends.file", True),
    Bad("scale-vs-replicas", "services:\n  web:\n    image: nginx\n    scale: 2\n    deploy:\n      replicas: 3\n",
        "can't set distinct values on 'scale' and 'deploy.replicas'", 4, "services.web.scale", True),
    Bad("label-file-escape", "services:\n  web:\n    image: nginx\n    label_file: ../../../../etc/x.labels\n",
        "leaves the repository", 4, "services.web.label_file", True),
    Bad("include-depends-cycle", "include: [sub/a.yaml]\nservices:\n  web:\n    image: nginx\n",
        "dependency cycle: a -> b -> a", 4, "services.a.depends_on", True,
        extra=(("sub/a.yaml", "services:\n  a:\n    image: x\n    depends_on: [b]\n"
                              "  b:\n    image: x\n    depends_on: [a]\n"),), file="sub/a.yaml"),
    Bad("container-name-replicas",
        "services:\n  web:\n    image: nginx\n    container_name: fixed\n    deploy:\n      replicas: 2\n",
        "can't set container_name with 2 replicas", 4, "services.web.container_name", True),
    Bad("container-name-scale", "services:\n  web:\n    image: nginx\n    scale: 3\n    container_name: fixed\n",
        "can't set container_name with 3 replicas", 5, "services.web.container_name", True),
    Bad("replicas-negative", "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: -1\n",
        "must be at least 0", 5, "services.web.deploy.replicas", True),
    Bad("pull-refresh-after-type", "services:\n  web:\n    image: nginx\n    pull_refresh_after: 3\n",
        "must be a string", 4, "services.web.pull_refresh_after", True),
    # Compose 2.40 accepts these; gitops-edge refuses them by name, saying why
    Bad("bind-recursive", "services:\n  web:\n    image: nginx\n    volumes:\n      - type: bind\n"
        "        source: ./d\n        target: /d\n        bind:\n          recursive: readonly\n",
        "'recursive' is not supported by gitops-edge: not implemented yet", 9,
        "services.web.volumes[0].bind.recursive", False),
    Bad("volume-labels", "services:\n  web:\n    image: nginx\n    volumes:\n      - type: volume\n"
        "        target: /d\n        volume:\n          labels: {a: b}\n",
        "'labels' is not supported by gitops-edge: not implemented yet", 8,
        "services.web.volumes[0].volume.labels", False),
    Bad("mount-type-image", "services:\n  web:\n    image: nginx\n    volumes:\n      - type: image\n"
        "        source: alpine\n        target: /d\n",
        "mount type 'image' is not supported by gitops-edge: an image mount needs", 5,
        "services.web.volumes[0].type", False),
    Bad("isolation", "services:\n  web:\n    image: nginx\n    isolation: process\n",
        "isolation must be 'default', not 'process'", 4, "services.web.isolation", False),
]


def write_case(root: Path, case: Bad) -> Path:
    stack = root / "stacks" / "case"
    stack.mkdir(parents=True)
    (stack / "compose.yaml").write_text(case.compose)
    for rel, text in case.extra:
        (stack / rel).parent.mkdir(parents=True, exist_ok=True)
        (stack / rel).write_text(text)
    return stack


def load_error(root: Path) -> DesiredStateError:
    with pytest.raises(DesiredStateError) as info:
        load_desired_state(root, "stacks", revision="r1")
    return info.value


def assert_located(err: DesiredStateError, file: str, line: int | None, key: str | None) -> None:
    text = str(err)
    assert "\n" not in text
    assert err.location is not None
    assert err.location.file == file, text
    if line is not None:
        assert err.location.line == line, text
        assert text.startswith(f"{file}:{line}:"), text
    if key is not None:
        assert err.location.key == key, text
        assert f": {key}: " in text, text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_located(case: Bad, tmp_path: Path, compose_bin: str) -> None:
    stack = write_case(tmp_path, case)
    err = load_error(tmp_path)
    assert case.expect in err.message, str(err)
    file = "stacks/case/" + (".env" if case.id.startswith(("bad-dotenv", "dotenv-")) else case.file)
    assert_located(err, file, case.line, case.key)
    if case.oracle_rejects:
        out = subprocess.run([compose_bin, "-p", "case", "config", "--format", "json"],
                             cwd=stack, env={"PATH": os.environ.get("PATH", "/usr/bin")},
                             capture_output=True, text=True, timeout=60)
        assert out.returncode != 0, f"compose accepted {case.id}: {out.stdout[:200]}"


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    lines = ['x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghij":
        lines.append(f"x-{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
        prev = name
    lines.append("services:\n  web:\n    image: nginx")
    write_case(tmp_path, Bad("bomb", "\n".join(lines) + "\n", "", None, None, False))
    err = load_error(tmp_path)
    assert "alias bomb" in err.message
    assert err.location is not None and err.location.file == "stacks/case/compose.yaml"
    assert err.location.line is not None


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    body = "services:\n  web:\n    image: nginx\n" + "# padding\n" * 120_000
    write_case(tmp_path, Bad("big", body, "", None, None, False))
    err = load_error(tmp_path)
    assert "limit" in err.message
    assert str(err).startswith("stacks/case/compose.yaml: ")


def test_two_compose_files_in_one_stack(tmp_path: Path) -> None:
    stack = write_case(tmp_path, Bad("two", "services: {}\n", "", None, None, False))
    (stack / "docker-compose.yml").write_text("services: {}\n")
    err = load_error(tmp_path)
    assert "several compose files" in err.message


def test_invalid_stack_directory_name(tmp_path: Path) -> None:
    (tmp_path / "stacks" / "Bad Name").mkdir(parents=True)
    (tmp_path / "stacks" / "Bad Name" / "compose.yaml").write_text("services: {}\n")
    err = load_error(tmp_path)
    assert "not a valid Compose project name" in err.message


def test_subpath_may_not_escape(tmp_path: Path) -> None:
    with pytest.raises(DesiredStateError, match="leaves the repository"):
        load_desired_state(tmp_path, "../elsewhere", revision="r1")


def test_symlinked_env_file_may_not_leave_repo(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    outside = tmp_path / "secret.env"
    outside.write_text("TOKEN=stolen\n")
    stack = write_case(root, Bad("ln", "services:\n  web:\n    image: nginx\n"
                                 "    env_file: app.env\n", "", None, None, False))
    (stack / "app.env").symlink_to(outside)
    err = load_error(root)
    assert "symlink that leads out of the repository" in err.message
    assert err.location is not None and err.location.file == "stacks/case/app.env"


def test_symlinked_bind_source_may_not_leave_repo(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    stack = write_case(root, Bad("ln", "services:\n  web:\n    image: nginx\n"
                                 "    volumes: [./etc:/x]\n", "", None, None, False))
    (stack / "etc").symlink_to("/etc")
    err = load_error(root)
    assert "symlink that leads out" in err.message
    assert str(err).startswith("stacks/case/compose.yaml: services.web.volumes[0]: ")


def test_symlinked_stack_dir_may_not_leave_repo(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "stacks").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    (root / "stacks" / "evil").symlink_to(elsewhere)
    err = load_error(root)
    assert "leads out of the repository" in err.message


def test_validate_tree_collects_every_error(tmp_path: Path) -> None:
    write_case(tmp_path, Bad("many", "services:\n  web:\n    image: nginx\n    imagee: x\n"
                             "    ports: [\"80x\"]\n  db:\n    restart: sometimes\n",
                             "", None, None, False))
    other = tmp_path / "stacks" / "other"
    other.mkdir()
    (other / "compose.yaml").write_text("services:\n  a:\n    image: x\n    networks: [nope]\n")
    errors = validate_tree(tmp_path, "stacks")
    texts = [str(e) for e in errors]
    assert len(errors) == 5, texts
    assert any(t.startswith("stacks/case/compose.yaml:4: services.web.imagee") for t in texts)
    assert any(t.startswith("stacks/case/compose.yaml:5: services.web.ports[0]") for t in texts)
    assert any("'image' is required" in t for t in texts)
    assert any(t.startswith("stacks/other/compose.yaml:4:") for t in texts)


def test_good_tree_validates_clean(tmp_path: Path) -> None:
    stack = tmp_path / "stacks" / "ok"
    stack.mkdir(parents=True)
    (stack / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    (tmp_path / "stacks" / "not-a-stack").mkdir()
    assert validate_tree(tmp_path, "stacks") == []


def test_a_secret_missing_on_the_device_is_located_before_anything_changes(tmp_path: Path) -> None:
    from gitops_edge.model.config import DeviceConfig

    write_case(tmp_path, Bad("secret", "services:\n  web:\n    image: nginx\n    secrets: [db_pw]\n"
                                       "secrets:\n  db_pw:\n    file: ./db_pw.txt\n", "", None, None, False,
                             extra=(("db_pw.txt", "in git, never read\n"),)))
    secrets = tmp_path / "device-secrets"
    secrets.mkdir()
    device = DeviceConfig("d1", secrets_dir=str(secrets))
    with pytest.raises(DesiredStateError) as info:
        load_desired_state(tmp_path, "stacks", revision="r1", device=device)
    assert "secret 'db_pw' is not on this device" in info.value.message
    assert_located(info.value, "stacks/case/compose.yaml", 4, "services.web.secrets[0]")
    (secrets / "db_pw").write_text("s3cret\n")
    web = load_desired_state(tmp_path, "stacks", revision="r1", device=device).stacks[0].service("web")
    assert [(m.source, m.target) for m in web.mounts] == [(str(secrets / "db_pw"), "/run/secrets/db_pw")]
    with pytest.raises(DesiredStateError, match="no secrets directory"):
        load_desired_state(tmp_path, "stacks", revision="r1", device=DeviceConfig("d1"))
