"""The agent config's parse cache (issue 16, start-up): used only for the exact bytes it was made from."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gitops_edge.adapters.files import config_cache, config_file
from gitops_edge.adapters.files.config_file import load_config
from gitops_edge.adapters.files.yaml_reader import parse_yaml
from gitops_edge.errors import ConfigError


def _config(tmp_path: Path, extra: str = "", state: str | None = None) -> Path:
    path = tmp_path / "agent.yaml"
    state_line = state if state is not None else str(tmp_path / "state")
    path.write_text(f"device: {{id: d1}}\nsource: {{url: /srv/fleet, interval: 30s}}\nstate_dir: {state_line}\n{extra}")
    (tmp_path / "state").mkdir(exist_ok=True)
    return path


def _no_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on a parse of the YAML fails the test: the cache must answer."""

    def refuse(text: str, display: str) -> object:
        raise AssertionError("the config was parsed again")

    monkeypatch.setattr("gitops_edge.adapters.files.yaml_reader.parse_yaml", refuse)


def test_second_load_comes_from_the_cache_and_equals_a_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, "health: {timeout: 90s}\nupdate_windows: [{days: [mon], start: '01:00', end: '02:00'}]\n")
    first = load_config(path)
    cache = tmp_path / "state" / config_cache.NAME
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600  # the config may hold credentials
    fresh = parse_yaml(path.read_text(), str(path))
    assert config_cache.load(tmp_path / "state", config_cache.digest(path.read_bytes())) == (fresh.data, fresh.lines)
    _no_yaml(monkeypatch)
    assert load_config(path) == first


def test_a_changed_config_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    path = _config(tmp_path, "health: {timeout: 90s}\n")
    assert load_config(path).health.timeout_s == 90
    before = path.stat()
    # same size, same modification time: only the bytes differ
    path.write_text(path.read_text().replace("90s", "80s"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert load_config(path).health.timeout_s == 80
    assert load_config(path).health.timeout_s == 80  # and the cache now holds the new parse
    path.write_text(path.read_text().replace("80s", "70s"))
    assert load_config(path).health.timeout_s == 70


def test_a_changed_config_that_no_longer_validates_fails_as_before(tmp_path: Path) -> None:
    path = _config(tmp_path)
    load_config(path)
    path.write_text(path.read_text() + "bogus: 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(path)
    path.write_text(path.read_text() + "  [\n")
    with pytest.raises(ConfigError):
        load_config(path)


@pytest.mark.parametrize("content", ["", "{not json", '{"format": 1}', "[]", "null"])
def test_a_torn_or_foreign_cache_means_a_parse(tmp_path: Path, content: str) -> None:
    path = _config(tmp_path, "health: {timeout: 90s}\n")
    (tmp_path / "state" / config_cache.NAME).write_text(content)
    assert load_config(path).health.timeout_s == 90
    assert config_cache.load(tmp_path / "state", config_cache.digest(path.read_bytes())) is not None  # rewritten


def test_a_cache_of_other_bytes_or_another_version_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, "health: {timeout: 90s}\n")
    load_config(path)
    cache = tmp_path / "state" / config_cache.NAME
    doc = json.loads(cache.read_text())
    doc["data"]["health"]["timeout"] = "10s"  # what a parse of other bytes would hold
    doc["sha256"] = "0" * 64
    cache.write_text(json.dumps(doc))
    assert load_config(path).health.timeout_s == 90
    doc = json.loads(cache.read_text())
    doc["data"]["health"]["timeout"] = "10s"
    doc["version"] = "0.0.0-older"
    cache.write_text(json.dumps(doc))
    assert load_config(path).health.timeout_s == 90


def test_environment_and_hostname_are_applied_on_every_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, "status: {listen: '127.0.0.1:${PORT}'}\n")
    assert load_config(path, environ={"PORT": "9100"}).status.listen == "127.0.0.1:9100"
    _no_yaml(monkeypatch)
    assert load_config(path, environ={"PORT": "9200"}).status.listen == "127.0.0.1:9200"


def test_no_cache_where_the_state_dir_is_not_plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GE_STATE", str(tmp_path / "state"))
    path = _config(tmp_path, state="${GE_STATE}")
    assert load_config(path).state_dir == tmp_path / "state"
    assert not (tmp_path / "state" / config_cache.NAME).exists()  # only the parser knows that directory


def test_no_cache_without_a_writable_state_dir(tmp_path: Path) -> None:
    path = _config(tmp_path, state=str(tmp_path / "absent"))
    assert load_config(path).state_dir == tmp_path / "absent"
    assert not (tmp_path / "absent").exists()  # the cache creates nothing


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("state_dir: /var/x\n", "/var/x"),
        ("state_dir: '/var/x'  # here\n", "/var/x"),
        ('state_dir: "/var/x"\n', "/var/x"),
        ("state_dir: rel\n", "REL"),
        ("device: {id: d}\n", "/default"),
        ("state_dir: ${X}/y\n", None),
        ("state_dir:\n  /var/x\n", None),
        ("'state_dir': /var/x\n", None),
        ("state_dir: /a\nstate_dir: /b\n", None),
    ],
)
def test_state_dir_hint(tmp_path: Path, text: str, want: str | None) -> None:
    got = config_cache.state_dir_hint(text, tmp_path / "agent.yaml", "/default")
    if want == "REL":
        assert got == (tmp_path / "rel").resolve()
    else:
        assert got == (Path(want) if want else None)


def test_a_relative_state_dir_is_cached_in_the_resolved_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, state="state")
    assert load_config(path).state_dir == (tmp_path / "state").resolve()
    _no_yaml(monkeypatch)
    assert load_config(path).state_dir == (tmp_path / "state").resolve()


def test_the_size_limit_still_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_file, "MAX_BYTES", 10)
    with pytest.raises(ConfigError, match="larger than the 10-byte limit"):
        load_config(_config(tmp_path))
