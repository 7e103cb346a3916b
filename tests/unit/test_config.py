"""core.config: the device-local agent config, validated with located errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from gitops_edge.adapters.files.yaml_reader import parse_yaml
from gitops_edge.core.config import parse_config, parse_duration
from gitops_edge.errors import ConfigError
from gitops_edge.model.config import AgentConfig

FILE = "/etc/gitops-edge/config.yaml"


def load(text: str, environ: Mapping[str, str] | None = None) -> AgentConfig:
    doc = parse_yaml(text, FILE)
    return parse_config(doc.data, file=FILE, lines=doc.lines,
                        environ=environ or {}, hostname="host-1")


def error(text: str, environ: Mapping[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(text, environ)
    return info.value


MINIMAL = "source:\n  url: https://git.example.com/fleet.git\n"


def test_minimal_config_takes_the_defaults() -> None:
    cfg = load(MINIMAL)
    assert cfg.device.id == "host-1" and cfg.device.labels == ()
    assert cfg.source.url == "https://git.example.com/fleet.git"
    assert (cfg.source.ref, cfg.source.path) == ("main", ".")
    assert (cfg.source.interval_s, cfg.source.jitter_s, cfg.source.timeout_s) == (60.0, 10.0, 60.0)
    assert cfg.state_dir == Path("/var/lib/gitops-edge")
    assert (cfg.health.timeout_s, cfg.health.stable_for_s) == (120.0, 10.0)
    assert cfg.status.listen == "127.0.0.1:9469"
    assert cfg.config_file == FILE


def test_full_config() -> None:
    cfg = load("""\
device:
  id: sensor-001
  labels: {site: farm-3, ring: canary}
source:
  url: https://git.example.com/fleet.git
  ref: v1.2
  path: devices/sensor-001
  interval: 1m30s
  jitter: 500ms
  token_file: /etc/gitops-edge/token
state_dir: /srv/edge
health: {timeout: 2m, stable_for: 0}
status: {listen: "[::1]:9000"}
""")
    assert cfg.device.id == "sensor-001"
    assert cfg.device.labels == (("ring", "canary"), ("site", "farm-3"))
    assert (cfg.source.ref, cfg.source.path) == ("v1.2", "devices/sensor-001")
    assert (cfg.source.interval_s, cfg.source.jitter_s) == (90.0, 0.5)
    assert cfg.source.token_file == Path("/etc/gitops-edge/token")
    assert cfg.state_dir == Path("/srv/edge")
    assert (cfg.health.timeout_s, cfg.health.stable_for_s) == (120.0, 0.0)
    assert cfg.status.listen == "[::1]:9000"


@pytest.mark.parametrize(("value", "seconds"), [
    ("30s", 30.0), ("5m", 300.0), ("1m30s", 90.0), ("500ms", 0.5), ("1.5h", 5400.0), ("0", 0.0),
    (45, 45.0), (2.5, 2.5), (0, 0.0), ("30", 30.0), ("2.5", 2.5), (" 10s ", 10.0),
])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "10 s", "s", "", "-5s", -1, True, None, [1], "1d"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_bad_duration_in_the_file_names_key_and_line() -> None:
    e = error(MINIMAL + "  interval: often\n")
    assert str(e) == f"{FILE}:3: source.interval: invalid duration 'often' (use e.g. 30s, 5m, 1m30s)"
    assert e.exit_code == 2


def test_zero_interval_is_refused() -> None:
    assert "must be greater than zero" in str(error(MINIMAL + "  interval: 0s\n"))


def test_env_expansion() -> None:
    text = """\
device: {id: "${DEVICE_ID}"}
source:
  url: https://${GIT_HOST:-git.example.com}/fleet.git
  ref: ${REF:-main}
  path: devices/${DEVICE_ID}
  interval: ${POLL:-45s}
state_dir: ${STATE:-/var/lib/x}
"""
    cfg = load(text, {"DEVICE_ID": "dev-9", "REF": "", "STATE": "/data/state"})
    assert cfg.device.id == "dev-9"
    assert cfg.source.url == "https://git.example.com/fleet.git"
    assert cfg.source.ref == "main"  # set but empty: ${VAR:-d} takes the default, like a shell
    assert cfg.source.path == "devices/dev-9"
    assert cfg.source.interval_s == 45.0
    assert cfg.state_dir == Path("/data/state")
    cfg = load(text, {"DEVICE_ID": "d", "GIT_HOST": "git.local:8443", "POLL": "10"})
    assert cfg.source.url == "https://git.local:8443/fleet.git"
    assert cfg.source.interval_s == 10.0


def test_empty_variable_without_default_expands_to_empty() -> None:
    cfg = load(MINIMAL + "  ref: v${SUFFIX}\n", {"SUFFIX": ""})
    assert cfg.source.ref == "v"


def test_unset_variable_names_the_variable_key_and_line() -> None:
    e = error(MINIMAL + "  token_file: ${TOKEN_FILE}\n", {})
    assert str(e) == f"{FILE}:3: source.token_file: environment variable TOKEN_FILE is not set"


def test_literal_dollar_text_is_left_alone() -> None:
    cfg = load(MINIMAL + "  ref: $NOT_BRACED\n", {})
    assert cfg.source.ref == "$NOT_BRACED"


@pytest.mark.parametrize(("text", "where"), [
    ("sorce:\n  url: x\n", f"{FILE}:1: sorce: unknown key"),
    (MINIMAL + "  intervall: 5s\n", f"{FILE}:3: source.intervall: unknown key"),
    ("device:\n  id: a\n  lables: {}\n" + MINIMAL, f"{FILE}:3: device.lables: unknown key"),
    (MINIMAL + "health:\n  timeout: 1s\n  stable: 2s\n", f"{FILE}:5: health.stable: unknown key"),
    (MINIMAL + "status:\n  port: 9\n", f"{FILE}:4: status.port: unknown key"),
])
def test_unknown_keys_name_the_key_path_and_line(text: str, where: str) -> None:
    e = str(error(text))
    assert e.startswith(where), e
    assert "allowed:" in e


def test_section_must_be_a_mapping() -> None:
    assert str(error(MINIMAL + "health: fast\n")) == f"{FILE}:3: health: must be a mapping"


def test_missing_url() -> None:
    assert str(error("device: {id: a}\n")) == f"{FILE}: source.url is required"
    assert str(error("source:\n  ref: main\n")) == f"{FILE}:1: source: source.url is required"
    assert str(error("source:\n  url: ''\n")).endswith("source.url is required")


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config(["a"], file=FILE)
    with pytest.raises(ConfigError, match=r"source\.url is required"):
        parse_config(None, file=FILE)


@pytest.mark.parametrize("listen", ["localhost", "9469", "127.0.0.1:", "127.0.0.1:port", "a b:1",
                                    "127.0.0.1:99999", "127.0.0.1:65536"])
def test_bad_listen(listen: str) -> None:
    e = str(error(MINIMAL + f"status:\n  listen: '{listen}'\n"))
    assert e.startswith(f"{FILE}:4: status.listen: must be HOST:PORT"), e


@pytest.mark.parametrize("listen", ["127.0.0.1:9469", "0.0.0.0:1", "[::]:65535", "edge.local:80", "127.0.0.1:0", ""])
def test_good_listen(listen: str) -> None:
    assert load(MINIMAL + f"status:\n  listen: '{listen}'\n").status.listen == listen


@pytest.mark.parametrize("path", ["..", "../other", "devices/../../etc", "/etc/fleet", "a/.."])
def test_source_path_must_stay_inside_the_repository(path: str) -> None:
    e = str(error(MINIMAL + f"  path: '{path}'\n"))
    assert e == f"{FILE}:3: source.path: must be a relative path inside the repository"


@pytest.mark.parametrize("path", [".", "devices/d1", "./devices", "devices/..d1"])
def test_source_path_inside_is_fine(path: str) -> None:
    assert load(MINIMAL + f"  path: '{path}'\n").source.path == path


def test_wrong_types_are_named() -> None:
    assert str(error("source:\n  url: [a, b]\n")) == f"{FILE}:2: source.url: must be a string"
    assert str(error(MINIMAL + "device:\n  labels: [a]\n")) == (
        f"{FILE}:4: device.labels: must be a mapping of label: value")
    assert str(error(MINIMAL + "state_dir: ''\n")) == f"{FILE}:3: state_dir: must be a directory path"


def test_device_identity_expands_in_source_path_and_ref() -> None:
    cfg = load("device: {id: sensor-7, labels: {ring: canary, site: farm-3}}\n"
               "source: {url: /r, ref: 'release/${label:ring}', path: 'devices/${DEVICE_ID}'}\n")
    assert (cfg.source.ref, cfg.source.path) == ("release/canary", "devices/sensor-7")


def test_device_id_from_env_then_identity_wins_over_env_elsewhere() -> None:
    # DEVICE_ID in the environment may set device.id; outside `device:` ${DEVICE_ID} is the device's id
    text = "device: {id: '${DEVICE_ID}'}\nsource: {url: /r, path: 'devices/${DEVICE_ID}'}\n"
    assert load(text, {"DEVICE_ID": "box-1"}).source.path == "devices/box-1"
    other = "device: {id: box-2}\nsource: {url: /r, path: 'devices/${DEVICE_ID:-x}'}\n"
    assert load(other, {"DEVICE_ID": "box-1"}).source.path == "devices/box-2"
    # with no device.id the hostname is the identity
    assert load("source: {url: /r, ref: '${DEVICE_ID}'}\n").source.ref == "host-1"


def test_unknown_label_names_the_key() -> None:
    err = error("device: {labels: {ring: canary}}\nsource:\n  url: /r\n  ref: 'release/${label:rnig}'\n")
    assert "source.ref" in str(err) and f"{FILE}:4" in str(err)
    assert "'rnig'" in err.message and "ring" in err.message


def test_labels_are_text_and_id_is_reserved() -> None:
    cfg = load("device: {labels: {debug: true, n: 3}}\n" + MINIMAL)
    assert cfg.device.labels == (("debug", "true"), ("n", "3"))
    assert "reserved" in error("device: {labels: {id: x}}\n" + MINIMAL).message
    assert "device.labels.ring" in str(error("device: {labels: {ring: }}\n" + MINIMAL))


def test_device_section_cannot_use_identity() -> None:
    cfg = load("device: {id: 'a-${label:ring}', labels: {ring: c}}\n" + MINIMAL)
    assert cfg.device.id == "a-${label:ring}"  # left as written: the identity is not known yet


def test_security_policy_keys_parse_and_default_to_nothing() -> None:
    from gitops_edge.core.config_trust import SECURITY_BOOLS, SECURITY_LISTS
    from gitops_edge.model.trust import SecurityPolicy

    assert load("source: {url: /r}\n").security == SecurityPolicy()
    flags = "".join(f"  {k}: true\n" for k in SECURITY_BOOLS)
    lists = "".join(f"  {k}: [{'/x' if k == 'allowed_bind_paths' else 'x'}]\n" for k in SECURITY_LISTS)
    policy = load(f"source: {{url: /r}}\nsecurity:\n{flags}{lists}").security
    assert all(getattr(policy, k) is True for k in SECURITY_BOOLS)
    assert all(len(getattr(policy, k)) == 1 for k in SECURITY_LISTS)
    assert policy.adopt_projects == ("x",)


@pytest.mark.parametrize(("text", "needle"), [
    ("security: {allow_everything: true}", "security.allow_everything: unknown key"),
    ("security: {adopt_projects: [Bad Name]}", "security.adopt_projects: 'Bad Name' is not a Compose project name"),
    ("security: {allowed_external_networks: host}", None),
    ("security: {allow_gpus: yes}", "security.allow_gpus: must be true or false"),
])  # fmt: skip
def test_security_section_errors_name_the_key(text: str, needle: str | None) -> None:
    if needle is None:
        assert load(f"source: {{url: /r}}\n{text}\n").security.allowed_external_networks == ("host",)
        return
    with pytest.raises(ConfigError) as info:
        load(f"source: {{url: /r}}\n{text}\n")
    assert needle in str(info.value)


def test_device_platform_is_normalized_and_defaults_to_the_engines() -> None:
    assert load(MINIMAL).device.platform is None
    assert load(MINIMAL + "device:\n  platform: linux/arm64/v8\n").device.platform == "linux/arm64"
    assert load(MINIMAL + "device:\n  platform: armhf\n").device.platform == "linux/arm/v7"
    e = error(MINIMAL + "device:\n  id: pi\n  platform: linux/z80\n")
    assert str(e).startswith(f"{FILE}:5: device.platform: 'linux/z80': unknown architecture 'z80'")
