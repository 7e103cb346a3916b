"""core.fleet: fleet.yaml parsing, selector matching, stack and layer selection (pure)."""

from __future__ import annotations

import pytest

from gitops_edge.adapters.files.yaml_reader import parse_yaml
from gitops_edge.core.compose import StackErrors
from gitops_edge.core.fleet import (
    Fleet,
    display_value,
    matches,
    merge_values,
    parse_fleet,
    parse_values,
    select,
)
from gitops_edge.model.config import DeviceConfig

FLEET = """\
stacks:
  web:    {devices: {site: farm-*, ring: [canary, stable]}}
  sensor: {devices: {id: sensor-*}}
  debug:  {devices: {ring: canary, debug: true}}
  all:    {devices: {}}
groups:
  gpu-boxes: {model: jetson-*}
  farm3: {site: farm-3}
"""


def fleet(text: str = FLEET) -> Fleet:
    doc = parse_yaml(text, "fleet.yaml")
    return parse_fleet(doc.data, doc.lines)


def errors(text: str) -> list[str]:
    with pytest.raises(StackErrors) as info:
        fleet(text)
    return [str(e) for e in info.value.errors]


def dev(id_: str, **labels: str) -> DeviceConfig:
    return DeviceConfig(id_, tuple(sorted(labels.items())))


def names(d: DeviceConfig) -> list[str]:
    return [s.stack for s in select(fleet(), d)]


def test_selectors_and_or_glob_id() -> None:
    assert names(dev("sensor-7", site="farm-3", ring="canary")) == ["web", "sensor", "all"]
    assert names(dev("box", site="farm-3", ring="beta")) == ["all"]  # ring not in the list
    assert names(dev("box", site="city-1", ring="stable")) == ["all"]  # site glob fails
    assert names(dev("box", ring="canary", debug="true")) == ["debug", "all"]  # YAML true == "true"
    assert names(dev("box", ring="canary")) == ["all"]  # a missing label never matches


def test_globs_are_case_sensitive_and_whole_value() -> None:
    sel = (("site", ("farm-*",)),)
    assert matches(sel, dev("x", site="farm-"))
    assert not matches(sel, dev("x", site="Farm-3"))
    assert not matches(sel, dev("x", site="old-farm-3"))
    assert matches((("n", ("[0-9]",)),), dev("x", n="7"))


def test_layers_groups_in_fleet_order_then_device() -> None:
    [web, _sensor, _all] = select(fleet(), dev("sensor-7", site="farm-3", ring="canary", model="jetson-nano"))
    assert web.stack_dir == "stacks/web"
    assert web.layers == ("groups/gpu-boxes/web", "groups/farm3/web", "devices/sensor-7/web")


def test_a_device_id_that_is_no_path_segment_gets_no_device_layer() -> None:
    [sel] = select(fleet("stacks: {all: {devices: {}}}\n"), dev("../etc"))
    assert sel.layers == ()


def test_precedence_later_layers_win_with_source() -> None:
    merged = merge_values([("stacks/web/.env", {"A": "1", "B": "1"}),
                           ("groups/g/web/values.yaml", {"B": "2", "C": "2"}),
                           ("devices/d/web/.env", {"C": "3"})])
    assert merged == {"A": ("1", "stacks/web/.env"), "B": ("2", "groups/g/web/values.yaml"),
                      "C": ("3", "devices/d/web/.env")}


def test_errors_name_file_line_and_key() -> None:
    errs = errors("stacks:\n  Web: {devices: {}}\n  x: {devices: {a: [], b: {c: d}}, other: 1}\n"
                  "  y: {}\ngroups:\n  'bad/name': {}\nextra: 1\n")
    assert "fleet.yaml:7: extra: unknown key" in errs[0]
    assert any(e.startswith("fleet.yaml:2: stacks.Web: stack name 'Web'") for e in errs)
    assert any(e.startswith("fleet.yaml:3: stacks.x.devices.a: an empty list") for e in errs)
    assert any(e.startswith("fleet.yaml:3: stacks.x.devices.b: must be a string pattern") for e in errs)
    assert any(e.startswith("fleet.yaml:3: stacks.x.other: unknown key") for e in errs)
    assert any(e.startswith("fleet.yaml:4: stacks.y: must be {devices: selector}") for e in errs)
    assert any(e.startswith("fleet.yaml:6: groups.bad/name: group name") for e in errs)
    assert errors("groups: {}\n") == ["fleet.yaml:1: stacks: 'stacks' is required: a mapping of stack name "
                                      "to {devices: selector}"]


def test_values_yaml_is_flat_scalars() -> None:
    doc = parse_yaml("A: 1\nB: true\nC: text\n", "v.yaml")
    assert parse_values(doc.data, doc.lines, "v.yaml") == {"A": "1", "B": "true", "C": "text"}
    doc = parse_yaml("A: {x: 1}\n1BAD: x\nN: [1]\n", "v.yaml")
    with pytest.raises(StackErrors) as info:
        parse_values(doc.data, doc.lines, "v.yaml")
    assert [str(e) for e in info.value.errors] == [
        "v.yaml:1: A: must be a string, number or boolean",
        "v.yaml:2: 1BAD: invalid variable name '1BAD' (letters, digits and '_')",
        "v.yaml:3: N: must be a string, number or boolean",
    ]


@pytest.mark.parametrize("name", ["DB_PASSWORD", "api_token", "JWT_SECRET", "SSH_KEY", "apikey"])
def test_secret_looking_names_are_masked(name: str) -> None:
    assert display_value(name, "hunter2") == "****"


def test_other_values_show() -> None:
    assert display_value("LOG_LEVEL", "debug") == "debug"
