"""Trust and device security policy (README.md, "Trust"): device-local, never from Git.

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
class SignedIdentity:
    """How a simple-signing payload's ``docker-reference`` must name the image (containers-policy.json's
    ``signedIdentity``).

    ``repository``: same repository, any tag (cosign signs without a tag; skopeo
    and podman sign ``repo:tag``). ``exact``: same repository and the very tag
    (or digest) the image was referenced by. ``remap``: an image whose
    repository starts with ``prefix`` (a mirror) is compared as if it started
    with ``signed_prefix`` (the name it was signed under), then as ``repository``.
    """

    mode: str = "repository"  # repository | exact | remap
    prefix: str = ""  # remap: canonical repository prefix of the mirror ("127.0.0.1:5055/mirror")
    signed_prefix: str = ""  # remap: what it stands for ("registry.example/team")


@dataclass(frozen=True)
class TrustRule:
    match: str  # shell glob on the repository (host[:port]/path, no tag or digest)
    keys: tuple[Path, ...] = ()  # cosign public keys, SPKI PEM
    keyless: tuple[KeylessIdentity, ...] = ()
    trusted_root: Path | None = None  # sigstore trusted_root.json; None: the sigstore package's
    require_digest: bool = False  # the compose file must pin the image by digest
    signed_identity: SignedIdentity = SignedIdentity()
    tlog: str = "optional"  # optional | required: key signatures must also be in a transparency log


@dataclass(frozen=True)
class TrustPolicy:
    default: str = "deny"  # deny | allow: images matching no rule
    rules: tuple[TrustRule, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """What made a signature acceptable."""

    format: str  # cosign-sig | cosign-sig-keyless | bundle-key | bundle-keyless
    signer: str  # key path, or "issuer: subject"
    detail: str = ""  # where it was found and what it signs
    log: str = ""  # the transparency log entry relied on ("rekor index N, SET"), "" for none
    time_source: str = ""  # verified signing time and where it came from, "" when no time was needed


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

    mode: str = "ssh"  # ssh | gpg
    allowed_signers: Path | None = None  # ssh: allowed_signers file
    gpg_keyring: Path | None = None  # gpg: a keyring (public keys) file or GNUPGHOME directory


@dataclass(frozen=True)
class RegistriesConfig:
    insecure: tuple[str, ...] = ()  # host[:port] allowed over plain HTTP (127.0.0.0/8 always is)
    auth_file: Path | None = None  # docker config.json with credentials; default ~/.docker/config.json
