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
