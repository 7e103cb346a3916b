"""How the git source talks to remotes: ssh command, env, redaction, URLs."""

from __future__ import annotations

import base64
import os
import shlex
from pathlib import Path

import pytest

from gitops_edge.adapters.git.transport import (
    display_url,
    local_env,
    normalise_url,
    ssh_command,
    transport_for,
)
from gitops_edge.errors import SourceError
from gitops_edge.model.config import SourceConfig


def test_ssh_command_without_key_is_batch_mode_and_bounded() -> None:
    args = shlex.split(ssh_command(SourceConfig(url="ssh://h/x", timeout_s=20)))
    assert args[0] == "ssh"
    assert "BatchMode=yes" in args
    assert "ConnectTimeout=20" in args
    assert "-i" not in args
    assert not any(a.startswith("StrictHostKeyChecking") for a in args)


def test_ssh_command_with_key_and_known_hosts_pins_both() -> None:
    cfg = SourceConfig(
        url="git@h:x.git",
        ssh_key=Path("/etc/gitops edge/id_ed25519"),
        known_hosts=Path("/etc/gitops-edge/known_hosts"),
    )
    args = shlex.split(ssh_command(cfg))
    assert args[args.index("-i") + 1] == "/etc/gitops edge/id_ed25519"  # quoted for the shell
    assert "IdentitiesOnly=yes" in args
    assert "UserKnownHostsFile=/etc/gitops-edge/known_hosts" in args
    assert "StrictHostKeyChecking=yes" in args


def _config_pairs(env: dict[str, str]) -> dict[str, str]:
    n = int(env["GIT_CONFIG_COUNT"])
    return {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(n)}


def test_env_never_prompts_and_ignores_user_config() -> None:
    t = transport_for(SourceConfig(url="https://h/x.git"), "https://h/x.git")
    assert t.env["GIT_TERMINAL_PROMPT"] == "0"
    assert t.env["GIT_ASKPASS"] == ""
    assert t.env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert t.env["GIT_CONFIG_GLOBAL"] == os.devnull
    pairs = _config_pairs(t.env)
    assert pairs["credential.helper"] == ""
    assert pairs["protocol.ext.allow"] == "never"
    assert "http.extraHeader" not in pairs


def test_token_goes_into_a_basic_header_via_env_and_is_redacted(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tok-123\n")
    cfg = SourceConfig(url="https://h/x.git", token_file=token_file, username="oauth2")
    t = transport_for(cfg, cfg.url)
    header = _config_pairs(t.env)["http.extraHeader"]
    assert header == "Authorization: Basic " + base64.b64encode(b"oauth2:tok-123").decode()
    assert t.redact(f"failed tok-123 {header}") == "failed *** Authorization: Basic ***"


def test_token_is_not_sent_to_non_http_remotes(tmp_path: Path) -> None:
    cfg = SourceConfig(url="git@h:x.git", token_file=tmp_path / "absent")
    assert "http.extraHeader" not in _config_pairs(transport_for(cfg, cfg.url).env)


@pytest.mark.parametrize("content", [None, "  \n"])
def test_missing_or_empty_token_file_is_a_source_error(tmp_path: Path, content: str | None) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    cfg = SourceConfig(url="https://h/x.git", token_file=token_file)
    with pytest.raises(SourceError, match="token file"):
        transport_for(cfg, cfg.url)


def test_display_url_hides_passwords_only() -> None:
    assert display_url("https://me:pw@h/x.git") == "https://me:***@h/x.git"
    assert display_url("ssh://git@h/x.git") == "ssh://git@h/x.git"
    assert display_url("git@h:x.git") == "git@h:x.git"


def test_normalise_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalise_url("https://h/x.git") == "https://h/x.git"
    assert normalise_url("file:///srv/x.git") == "file:///srv/x.git"
    assert normalise_url("git@h:x.git") == "git@h:x.git"
    assert normalise_url("repos/x.git") == str(tmp_path / "repos/x.git")
    assert normalise_url("/srv/x.git") == "/srv/x.git"


@pytest.mark.parametrize(("url", "scheme"), [
    ("https://h/x.git", "https"), ("http://h/x.git", "http"), ("ssh://git@h/x.git", "ssh"),
    ("git@h:fleet.git", "ssh"), ("git://h/x.git", "git"), ("file:///srv/x.git", "file"),
    ("/srv/x.git", "file"),
])  # fmt: skip
def test_only_the_configured_transport_is_allowed(url: str, scheme: str) -> None:
    pairs = _config_pairs(transport_for(SourceConfig(url=url), url).env)
    assert pairs["protocol.allow"] == "never"
    assert pairs[f"protocol.{scheme}.allow"] == "always"
    upgrade = ["protocol.https.allow"] if scheme == "http" else []  # a redirect to https is fine
    assert [k for k, v in pairs.items() if k.startswith("protocol.") and v == "always"] == [
        f"protocol.{scheme}.allow", *upgrade]


def test_no_setting_can_start_a_program() -> None:
    env = local_env(SourceConfig(url="/srv/x.git"), "/srv/x.git")
    pairs = _config_pairs(env)
    assert pairs["core.hooksPath"] == os.devnull
    assert pairs["core.fsmonitor"] == "false"
    assert pairs["submodule.recurse"] == "false"
    assert pairs["core.attributesFile"] == os.devnull
    assert env["GIT_ATTR_NOSYSTEM"] == "1" and env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_PAGER"] == "cat" and env["GIT_EDITOR"] == "true"
