"""The device's policy sections of the agent config: security allowlist, registries, signed commits.

Apart from ``model.trust`` (image trust rules, evidence, verdicts) because every
command builds these three from its config, while the trust rules are needed
only on a device with a ``trust`` section or when images are verified: a
one-shot ``status`` or no-change ``sync`` need not create those classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SecurityPolicy:
    """What a compose file from Git may ask of the device: an allowlist, strict by default.

    Every field widens what the repository may do; the default of each allows
    nothing beyond what ``core.security`` calls plainly safe. README.md documents each key.
    """

    allow_privileged: bool = False
    allow_host_network: bool = False  # network_mode: host
    allow_host_pid: bool = False  # pid: host
    allow_host_ipc: bool = False  # ipc: host
    allow_host_uts: bool = False  # uts: host
    allow_host_userns: bool = False  # userns_mode: host
    allow_host_cgroupns: bool = False  # cgroup: host
    allow_foreign_containers: bool = False  # container:X in network_mode/pid/ipc/volumes_from, external_links
    allowed_capabilities: tuple[str, ...] = ()  # beyond Docker's default set; "ALL" allows any
    allowed_devices: tuple[str, ...] = ()  # host device paths (globs), e.g. /dev/ttyUSB*
    allow_device_cgroup_rules: bool = False
    allow_gpus: bool = False
    allowed_bind_paths: tuple[str, ...] = ()  # host path prefixes a bind mount (or o: bind volume) may use
    allow_unconfined: bool = False  # any security_opt at all (seccomp, apparmor, label, systempaths)
    allowed_security_opts: tuple[str, ...] = ()  # these exact security_opt values
    allowed_sysctls: tuple[str, ...] = ()  # globs, beyond the ones namespaced to the container
    allowed_logging_drivers: tuple[str, ...] = ()  # beyond json-file, local, none
    allowed_runtimes: tuple[str, ...] = ()  # beyond runc
    allow_cgroup_parent: bool = False
    allow_storage_opt: bool = False  # storage_opt (driver options of the container's filesystem)
    allow_oom_protection: bool = False  # oom_kill_disable, negative oom_score_adj
    allowed_volume_drivers: tuple[str, ...] = ()  # beyond local
    allowed_volume_types: tuple[str, ...] = ()  # local driver_opts mount types beyond tmpfs and bind
    allowed_network_drivers: tuple[str, ...] = ()  # beyond bridge
    allowed_network_options: tuple[str, ...] = ()  # network driver_opts beyond mtu/icc/masquerade/host ip
    allowed_external_volumes: tuple[str, ...] = ()  # external or `name:` volumes the agent did not create
    allowed_external_networks: tuple[str, ...] = ()  # external or `name:` networks the agent did not create
    adopt_projects: tuple[str, ...] = ()  # compose projects made by hand (or by another tool) it may take over


@dataclass(frozen=True)
class CommitVerification:
    """``source.verify``: every fetched commit must be signed by an allowed signer."""

    mode: str = "ssh"  # ssh | gpg
    allowed_signers: Path | None = None  # ssh: allowed_signers file
    gpg_keyring: Path | None = None  # gpg: a keyring (public keys) file or GNUPGHOME directory


@dataclass(frozen=True)
class RegistriesConfig:
    insecure: tuple[str, ...] = ()  # host[:port] allowed over plain HTTP (127.0.0.0/8 always is)
    auth_file: Path | None = None  # docker config.json with credentials; default ~/.docker/config.json
