"""Trust and device security policy (DESIGN.md §6): device-local, never from Git.

The repository is what is being verified, so it cannot also be what vouches:
these come only from the agent config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeylessIdentity:
    """A sigstore keyless signer: an OIDC issuer plus the certificate identity."""

    issuer: str
    subject: str | None = None  # exact match
    subject_regex: str | None = None  # full match (re.fullmatch)


@dataclass(frozen=True)
class TrustRule:
    match: str  # shell glob on the repository (host[:port]/path, no tag or digest)
    keys: tuple[Path, ...] = ()  # cosign public keys, SPKI PEM
    keyless: tuple[KeylessIdentity, ...] = ()
    trusted_root: Path | None = None  # sigstore trusted_root.json; None: the sigstore package's
    require_digest: bool = False  # the compose file must pin the image by digest


@dataclass(frozen=True)
class TrustPolicy:
    default: str = "deny"  # deny | allow: images matching no rule
    rules: tuple[TrustRule, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """What made a signature acceptable."""

    format: str  # cosign-sig | bundle-key | bundle-keyless
    signer: str  # key path, or "issuer: subject"
    detail: str = ""


@dataclass(frozen=True)
class TrustVerdict:
    image: str  # the reference as written
    digest: str  # sha256:... that was verified
    allowed: bool
    rule: str | None  # the matching rule's `match`, or None (default applied)
    reason: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class SecurityPolicy:
    """What a compose file from Git may ask of the device. Strict by default."""

    allow_privileged: bool = False
    allow_host_network: bool = False
    allow_host_pid: bool = False
    allow_host_ipc: bool = False
    allowed_capabilities: tuple[str, ...] = ()  # beyond Docker's default set; "ALL" allows any
    allowed_devices: tuple[str, ...] = ()  # host device paths (globs), e.g. /dev/ttyUSB*
    allowed_bind_paths: tuple[str, ...] = ()  # host path prefixes a bind mount may use
    allow_unconfined: bool = False  # security_opt seccomp=unconfined / apparmor=unconfined
    allowed_runtimes: tuple[str, ...] = ()  # OCI runtimes beyond runc (e.g. nvidia, io.containerd.wasmedge.v1)
    allow_foreign_containers: bool = False  # container:X in network_mode/ipc/pid/volumes_from
    allow_host_uts: bool = False  # uts: host
    allow_host_userns: bool = False  # userns_mode: host (leaves daemon user-namespace remapping)
    allow_host_cgroupns: bool = False  # cgroup: host
    allow_cgroup_parent: bool = False  # cgroup_parent: places the container in a host cgroup
    allow_device_cgroup_rules: bool = False  # device_cgroup_rules: device access by number
    allow_gpus: bool = False  # gpus, deploy.resources.reservations.devices
    allow_storage_opt: bool = False  # storage_opt (driver options of the container's filesystem)
    allow_oom_protection: bool = False  # oom_kill_disable, negative oom_score_adj


@dataclass(frozen=True)
class CommitVerification:
    """``source.verify``: every fetched commit must be signed by an allowed signer."""

    mode: str  # ssh | gpg
    allowed_signers: Path | None = None  # ssh: allowed_signers file
    gpg_keyring: Path | None = None  # gpg: a keyring (public keys) file or GNUPGHOME directory


@dataclass(frozen=True)
class RegistriesConfig:
    insecure: tuple[str, ...] = ()  # host[:port] allowed over plain HTTP (127.0.0.0/8 always is)
    auth_file: Path | None = None  # docker config.json with credentials; default ~/.docker/config.json
