"""docs/compose.md names every key of Compose 2.40's schema, with what the loader does with it.

The key lists are written here by hand from the compose-spec schema that
Docker Compose 2.40.3 uses (compose-go v2.9.1, schema/compose-spec.json):
a key the doc forgets, a key the loader accepts that the schema does not
have, or a doc row that disagrees with the loader fails here.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from gitops_edge.core.compose.service import SERVICE_KEYS, UNSUPPORTED_SERVICE_KEYS
from gitops_edge.core.compose.stack import TOP_LEVEL_KEYS, UNSUPPORTED_TOP_LEVEL_KEYS
from gitops_edge.model.trust import SecurityPolicy

DOC = Path(__file__).resolve().parents[2] / "docs" / "compose.md"

SCHEMA_TOP_LEVEL = frozenset({
    "version", "name", "include", "services", "models", "networks", "volumes", "secrets", "configs", "x-*",
})
SCHEMA_SERVICE = frozenset({
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
    "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
    "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on",
    "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname",
    "entrypoint", "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "gpus",
    "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "label_file", "labels",
    "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit",
    "models", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit",
    "platform", "ports", "post_start", "pre_stop", "privileged", "profiles", "provider", "pull_policy",
    "pull_refresh_after", "read_only", "restart", "runtime", "scale", "secrets", "security_opt", "shm_size",
    "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits",
    "use_api_socket", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
})
STATUSES = ("loaded", "ignored", "build-only", "refused")


def table(title: str) -> dict[str, str]:
    """``key -> status`` of the table under ``### title`` in the schema section."""
    text = DOC.read_text()
    section = text.split("## Every key of Compose 2.40's schema", 1)[1].split("\n## ", 1)[0]
    body = section.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z_*-]+)` \| (.+) \|$", body, re.MULTILINE)}


def test_the_doc_names_every_schema_key_and_no_other() -> None:
    assert set(table("Top level")) == SCHEMA_TOP_LEVEL
    assert set(table("Services")) == SCHEMA_SERVICE


def test_the_loader_knows_exactly_the_schema_keys() -> None:
    """Every schema key is accepted or refused by name; nothing outside the schema is accepted."""
    assert SERVICE_KEYS <= SCHEMA_SERVICE
    unnamed = SCHEMA_SERVICE - SERVICE_KEYS - UNSUPPORTED_SERVICE_KEYS
    assert unnamed == {"extends"}  # resolved before the service is read
    assert set(TOP_LEVEL_KEYS) | set(UNSUPPORTED_TOP_LEVEL_KEYS) | {"x-*"} == SCHEMA_TOP_LEVEL


@pytest.mark.parametrize("title", ["Top level", "Services"])
def test_each_row_agrees_with_the_loader(title: str) -> None:
    accepted = (set(SERVICE_KEYS) | {"extends"}) if title == "Services" else {*TOP_LEVEL_KEYS, "x-*"}
    refused = UNSUPPORTED_SERVICE_KEYS if title == "Services" else set(UNSUPPORTED_TOP_LEVEL_KEYS)
    policy_names = {f.name for f in fields(SecurityPolicy)}
    for key, status in table(title).items():
        word = re.match(r"[a-z-]+", status).group(0)  # type: ignore[union-attr]
        assert word in STATUSES, f"{key}: {status}"
        assert (key in refused) == (word == "refused"), f"{key}: {status}"
        assert (key in accepted) == (word != "refused"), f"{key}: {status}"
        for name in re.findall(r"`security\.([a-z_]+)`", status):
            assert name in policy_names, f"{key}: no security.{name}"
