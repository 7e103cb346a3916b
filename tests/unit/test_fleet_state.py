"""Targeting on real files (no engine): layering, override checks, validation, examples, the CLI report."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_edge.adapters.files.config_file import load_config
from gitops_edge.adapters.files.desired_state import load_desired_state, validate_tree
from gitops_edge.cli.main import main
from gitops_edge.core.compose import StackErrors
from gitops_edge.model.config import DeviceConfig

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example-fleet-targeted"
COMPOSE = "services:\n  app:\n    image: busybox:${TAG}\n    environment: {MODE: '${MODE}'}\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def repo(tmp_path: Path, **extra: str) -> Path:
    return write(tmp_path, {
        "fleet.yaml": "stacks:\n  web: {devices: {site: farm-*}}\n  other: {devices: {ring: beta}}\n"
                      "groups:\n  g1: {site: farm-*}\n  g2: {model: jetson-*}\n",
        "stacks/web/compose.yaml": COMPOSE,
        "stacks/web/.env": "TAG=1\nMODE=base\n",
        "stacks/other/compose.yaml": "services:\n  o:\n    image: busybox\n",
        **{k.replace("__", "/"): v for k, v in extra.items()},
    })


def env_of(root: Path, device: DeviceConfig) -> dict[str, tuple[str, str]]:
    desired = load_desired_state(root, ".", "r", device=device)
    return {st.name: (st.services[0].image, dict(st.services[0].environment).get("MODE", "")) for st in desired.stacks}


def test_precedence_stack_env_groups_in_order_device(tmp_path: Path) -> None:
    root = repo(tmp_path, **{
        "groups__g1__web__values.yaml": "MODE: g1\nTAG: 2\n",
        "groups__g2__web__.env": "MODE=g2-${TAG}\n",  # sees the layers below it
        "devices__d1__web__values.yaml": "MODE: dev\n",
    })
    farm = DeviceConfig("d0", (("site", "farm-1"),))
    assert env_of(root, farm) == {"web": ("busybox:2", "g1")}
    gpu = DeviceConfig("d0", (("model", "jetson-x"), ("site", "farm-1")))
    assert env_of(root, gpu) == {"web": ("busybox:2", "g2-2")}
    assert env_of(root, DeviceConfig("d1", gpu.labels)) == {"web": ("busybox:2", "dev")}
    assert env_of(root, DeviceConfig("d1", (("site", "city"),))) == {}  # no stack: nothing at all


def test_same_name_in_both_files_of_one_dir_is_refused(tmp_path: Path) -> None:
    root = repo(tmp_path, **{"devices__d1__web__.env": "MODE=a\n", "devices__d1__web__values.yaml": "\nMODE: b\n"})
    with pytest.raises(StackErrors) as info:
        load_desired_state(root, ".", "r", device=DeviceConfig("d1", (("site", "farm-1"),)))
    assert str(info.value) == ("devices/d1/web/values.yaml:2: MODE: MODE is also set in devices/d1/web/.env; "
                               "set it in one file only")


def test_validate_without_device_checks_every_stack_and_override(tmp_path: Path) -> None:
    root = repo(tmp_path, **{
        "devices__d1__web__values.yaml": "MODE: [x]\n",
        "devices__d1__nope__.env": "A=1\n",
        "devices__d2__web__typo.yaml": "A: 1\n",
        "groups__unknown__web__.env": "A=1\n",
        "groups__g1__web__.env": "TAG=${\n",
        "stacks__other__compose.yaml": "services:\n  o:\n    image: busybox\n    helthcheck: {}\n",
    })
    problems = sorted(str(e) for e in validate_tree(root))
    assert problems == [
        "devices/d1/nope: stack 'nope' is not listed under stacks: in fleet.yaml",
        "devices/d1/web/values.yaml:1: MODE: must be a string, number or boolean",
        "devices/d2/web/typo.yaml: unknown file 'typo.yaml' in an override directory (allowed: .env, values.yaml)",
        "groups/g1/web/.env:1: TAG: invalid interpolation format: unclosed '${' in '${'",
        "groups/unknown: group 'unknown' is not declared under groups: in fleet.yaml",
        problems[5],
    ]
    assert problems[5].startswith("stacks/other/compose.yaml:4: services.o.helthcheck: ")


def test_fleet_yaml_problems(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root, {"fleet.yaml": "stacks:\n  web: {devices: {}}\n  ghost: {devices: {}}\n"})
    assert [str(e) for e in validate_tree(root)] == ["fleet.yaml:3: stacks.ghost: no stack directory stacks/ghost/"]
    err = validate_tree(root, "devices/x")
    assert "source.path must be '.'" in str(err[0]) and str(err[0]).startswith("fleet.yaml: ")


def test_values_change_the_stack_spec_hash_input(tmp_path: Path) -> None:
    root = repo(tmp_path, **{"devices__d1__web__.env": "TAG=9\n"})
    desired = load_desired_state(root, ".", "r", device=DeviceConfig("d1", (("site", "farm-1"),)))
    assert desired.stacks[0].services[0].image == "busybox:9"
    assert desired.stacks[0].compose_file == "stacks/web/compose.yaml"


def test_without_fleet_yaml_nothing_changes(tmp_path: Path) -> None:
    write(tmp_path, {"web/compose.yaml": COMPOSE, "web/.env": "TAG=1\n", "devices/d1/x/.env": "A=1\n"})
    desired = load_desired_state(tmp_path, ".", "r", device=DeviceConfig("zzz", (("site", "nowhere"),)))
    assert [s.name for s in desired.stacks] == ["web"]  # devices/ holds no compose file: not a stack


def test_example_targeted_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_tree(EXAMPLE) == []
    cfg = load_config(ROOT / "config" / "agent.fleet.example.yaml", environ={})
    assert (cfg.source.ref, cfg.source.path, cfg.device.id) == ("release/canary", ".", "sensor-7")
    desired = load_desired_state(EXAMPLE, cfg.source.path, "0" * 40, device=cfg.device)
    assert [s.name for s in desired.stacks] == ["web", "sensor"]
    env = dict(desired.stacks[0].services[0].environment)
    assert (env["ACCELERATOR"], env["LOG_LEVEL"]) == ("cuda", "debug")

    code = main(["validate", str(EXAMPLE), "--device-id", "sensor-7", "--label", "site=farm-3",
                 "--label", "ring=canary", "--label", "debug=true"])
    out = capsys.readouterr().out
    assert code == 0
    assert "3 stack(s) selected by fleet.yaml" in out and "  debug  (stacks/debug)" in out
    assert "API_TOKEN   = ****" in out and "not-a-real-token" not in out
    assert "LOG_LEVEL   = debug  [devices/sensor-7/web/values.yaml]" in out
    assert "ACCELERATOR = cpu    [stacks/web/.env]" in out  # no model label: not a gpu box


def test_validate_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE), "--label", "a=b"]) == 2
    assert main(["validate", str(EXAMPLE), "--device-id", "x", "--label", "ab"]) == 2
    assert "use NAME=VALUE" in capsys.readouterr().err
