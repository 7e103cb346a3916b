"""The device-local agent configuration, validated.

The field defaults here are the only place a default is written: the parser
(``gitops_edge.core.config``) takes what a config leaves out from these classes,
and ``tests/unit/test_config_defaults.py`` holds the shipped examples and the
README to the same values. Keys and examples: README.md and ``config/*.example.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_edge.model.policy import CommitVerification, RegistriesConfig, SecurityPolicy

if TYPE_CHECKING:  # annotations only: a process that reads no update window or trust rule imports neither
    from datetime import time

    from gitops_edge.model.trust import TrustPolicy


@dataclass(frozen=True)
class DeviceConfig:
    id: str
    labels: tuple[tuple[str, str], ...] = ()
    secrets_dir: str | None = None  # absolute; compose `secrets:` are read from here, never from Git
    # The OCI platform images are chosen for ("linux/arm64", "linux/arm/v7"), normalized;
    # None: the engine's own platform, as `docker pull` chooses.
    platform: str | None = None


@dataclass(frozen=True)
class SourceConfig:
    url: str  # https://, http://, ssh://, user@host:path, file:// or a local path
    ref: str = "main"  # branch, tag or full/abbreviated commit
    path: str = "."  # directory inside the repository holding the stacks
    interval_s: float = 60.0
    jitter_s: float = 10.0
    spread_start: bool = True  # daemon: first poll at a random point in the first interval, not all at once
    token_file: Path | None = None  # https: a file holding a token (never logged)
    username: str = "git"  # https user that goes with the token
    ssh_key: Path | None = None  # ssh: private key file
    known_hosts: Path | None = None  # ssh: known_hosts file (strict checking when set)
    timeout_s: float = 60.0  # longest a single git network operation may take
    verify: CommitVerification | None = None  # signed commits only
    allow_rewind: bool = False  # may the ref move to a commit that does not descend from the applied one
    hint_spread_s: float = 2.0  # a push hint (MQTT, webhook) starts a poll within this random delay
    hint_min_gap_s: float = 10.0  # hinted polls are at least this far apart, however many hints arrive


@dataclass(frozen=True)
class HealthConfig:
    timeout_s: float = 120.0
    stable_for_s: float = 10.0


@dataclass(frozen=True)
class StatusConfig:
    listen: str = "127.0.0.1:9469"
    webhook_secret_file: Path | None = None  # set: POST /hooks/git takes signed Git-server push webhooks


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class UpdateWindow:
    """Days and local hours in which updates may start (a window may cross midnight)."""

    days: tuple[str, ...]  # subset of DAYS
    start: time
    end: time


@dataclass(frozen=True)
class NotifyConfig:
    webhook: str | None = None  # POSTed JSON on rollback, refusal, repeated failure
    timeout_s: float = 10.0
    repeat_after: int = 3  # consecutive failed syncs before "repeated failure" is sent


@dataclass(frozen=True)
class MqttConfig:
    """Fleet status over MQTT: retained status, events, online flag (Last Will)."""

    host: str
    port: int = 1883
    tls: bool = False  # mqtts:// or tls: true
    topic_prefix: str = "gitops-edge"
    username: str | None = None
    password_file: Path | None = None  # read at connect, never logged
    ca_file: Path | None = None  # TLS: trust these CAs instead of the system's
    keepalive_s: int = 30  # the broker publishes the Last Will after 1.5x this without a word
    cert_file: Path | None = None  # TLS client certificate (PEM), with key_file
    key_file: Path | None = None
    push: bool = True  # subscribe to <prefix>/refs/<ref>: a new commit there starts a poll at once
    heartbeat_s: float = 900.0  # an unchanged status is republished this often (changes go at once)


@dataclass(frozen=True)
class MetricsConfig:
    pushgateway: str | None = None  # http(s) URL: push the metrics there after every sync
    timeout_s: float = 5.0


@dataclass(frozen=True)
class RetentionConfig:
    """What the device keeps, and how much idle work it does (flash wear, full disks)."""

    history: int = 1000  # sync history rows kept (changes, failures, refusals; unchanged polls are not rows)
    history_days: float = 90.0  # and none older than this
    rollback_revisions: int = 5  # good revisions per stack whose images stay for `rollback`
    min_free_bytes: int = 0  # free space the engine's data root must keep when layer sizes are unknown
    full_check_s: float = 600.0  # an idle daemon still re-plans from scratch at least this often


DEFAULT_STATE_DIR = "/var/lib/gitops-edge"  # SQLite state (history, journal), the Git checkout


@dataclass(frozen=True)
class AgentConfig:
    device: DeviceConfig
    source: SourceConfig
    state_dir: Path
    health: HealthConfig = field(default_factory=HealthConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    trust: TrustPolicy | None = None  # None: images run unverified (and every status says so)
    security: SecurityPolicy = field(default_factory=SecurityPolicy)
    registries: RegistriesConfig = field(default_factory=RegistriesConfig)
    update_windows: tuple[UpdateWindow, ...] = ()  # empty: any time
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    mqtt: MqttConfig | None = None  # None: no fleet status over MQTT
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    config_file: str = "<config>"
