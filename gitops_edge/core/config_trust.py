"""Parse the trust, security, registries and ``source.verify`` config sections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_edge.core.compose.problems import KeyPath
from gitops_edge.core.config_location import Locator
from gitops_edge.errors import ConfigError
from gitops_edge.model.policy import CommitVerification, RegistriesConfig, SecurityPolicy

if TYPE_CHECKING:  # the trust model is imported by parse_trust, for a config with a trust section
    from gitops_edge.model.trust import SignedIdentity, TrustPolicy, TrustRule

Path_ = KeyPath

RULE_KEYS = {"match", "keys", "keyless", "trusted_root", "require_digest", "signed_identity", "tlog"}
REMAP_KEYS = {"prefix", "signed_prefix"}
KEYLESS_KEYS = {"issuer", "subject", "subject_regex"}
SECURITY_BOOLS = (
    "allow_privileged", "allow_host_network", "allow_host_pid", "allow_host_ipc", "allow_host_uts",
    "allow_host_userns", "allow_host_cgroupns", "allow_foreign_containers", "allow_device_cgroup_rules",
    "allow_gpus", "allow_unconfined", "allow_cgroup_parent", "allow_storage_opt", "allow_oom_protection",
)
SECURITY_LISTS = (
    "allowed_capabilities", "allowed_devices", "allowed_bind_paths", "allowed_security_opts", "allowed_sysctls",
    "allowed_logging_drivers", "allowed_runtimes", "allowed_volume_drivers", "allowed_volume_types",
    "allowed_network_drivers", "allowed_network_options", "allowed_external_volumes",
    "allowed_external_networks", "adopt_projects",
)
SECURITY_KEYS = {*SECURITY_BOOLS, *SECURITY_LISTS}


class _Fields:
    """Typed reads from one mapping, errors naming the key path."""

    def __init__(self, reader: Locator, data: object, path: KeyPath, allowed: set[str]) -> None:
        self.r, self.path = reader, path
        if not isinstance(data, dict):
            raise ConfigError("must be a mapping", reader.loc(path))
        for k in data:
            if k not in allowed:
                raise ConfigError(f"unknown key (allowed: {', '.join(sorted(allowed))})", reader.loc((*path, k)))
        self.data: dict[str, Any] = data

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, self.r.loc((*self.path, key)))

    def str_(self, key: str, required: bool = False) -> str | None:
        v = self.data.get(key)
        if v is None:
            if required:
                raise ConfigError(f"{key} is required", self.r.loc(self.path))
            return None
        if not isinstance(v, str) or not v:
            raise self.fail(key, "must be a non-empty string")
        return v

    def bool_(self, key: str, default: bool) -> bool:
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(key, "must be true or false")
        return v

    def strs(self, key: str) -> tuple[str, ...]:
        v = self.data.get(key) or []
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise self.fail(key, "must be a list of strings")
        return tuple(v)


def parse_trust(reader: Locator, data: object) -> TrustPolicy | None:
    if data is None:
        return None
    from gitops_edge.model.trust import TrustPolicy

    f = _Fields(reader, data, ("trust",), {"default", "images"})
    default = f.data.get("default", TrustPolicy.default)
    if default not in ("deny", "allow"):
        raise f.fail("default", "must be deny or allow")
    images = f.data.get("images") or []
    if not isinstance(images, list):
        raise f.fail("images", "must be a list of rules")
    return TrustPolicy(default=default, rules=tuple(_rule(reader, r, ("trust", "images", i))
                                                    for i, r in enumerate(images)))


def _rule(reader: Locator, data: object, path: KeyPath) -> TrustRule:
    from gitops_edge.model.trust import KeylessIdentity, TrustRule

    f = _Fields(reader, data, path, RULE_KEYS)
    match = f.str_("match", required=True)
    assert match is not None
    if "@" in match or re.search(r":[^/]*$", match.split("/", 1)[-1] if "/" in match else ""):
        raise f.fail("match", "matches a repository (host[:port]/path): no tag or digest")
    keyless_raw = f.data.get("keyless") or []
    if not isinstance(keyless_raw, list):
        raise f.fail("keyless", "must be a list of {issuer, subject | subject_regex}")
    keyless = []
    for i, item in enumerate(keyless_raw):
        kf = _Fields(reader, item, (*path, "keyless", i), KEYLESS_KEYS)
        issuer = kf.str_("issuer", required=True)
        subject, regex = kf.str_("subject"), kf.str_("subject_regex")
        if (subject is None) == (regex is None):
            raise ConfigError("give exactly one of subject or subject_regex", reader.loc((*path, "keyless", i)))
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise kf.fail("subject_regex", f"invalid regular expression: {exc}") from None
        assert issuer is not None
        keyless.append(KeylessIdentity(issuer=issuer, subject=subject, subject_regex=regex))
    keys = tuple(Path(k) for k in f.strs("keys"))
    if not keys and not keyless:
        raise ConfigError("a rule needs keys or keyless identities", reader.loc(path))
    root = f.str_("trusted_root")
    tlog = f.data.get("tlog", "optional")
    if tlog not in ("optional", "required"):
        raise f.fail("tlog", "must be optional or required")
    return TrustRule(
        match=match,
        keys=keys,
        keyless=tuple(keyless),
        trusted_root=Path(root) if root else None,
        require_digest=f.bool_("require_digest", TrustRule.require_digest),
        signed_identity=_signed_identity(reader, f.data.get("signed_identity"), (*path, "signed_identity")),
        tlog=tlog,
    )


def _signed_identity(reader: Locator, data: object, path: Path_) -> SignedIdentity:
    from gitops_edge.model.trust import SignedIdentity

    """``repository`` (default) | ``exact`` | ``{prefix: MIRROR, signed_prefix: SIGNED}`` (a remap)."""
    if data is None:
        return SignedIdentity()
    if isinstance(data, str):
        if data not in ("repository", "exact"):
            raise ConfigError("must be repository, exact or {prefix, signed_prefix}", reader.loc(path))
        return SignedIdentity(mode=data)
    f = _Fields(reader, data, path, REMAP_KEYS)
    prefix, signed = f.str_("prefix", required=True), f.str_("signed_prefix", required=True)
    assert prefix is not None and signed is not None
    for key, value in (("prefix", prefix), ("signed_prefix", signed)):
        if "/" not in value.strip("/") and "." not in value and ":" not in value:
            raise f.fail(key, "must be a registry host, optionally with a path (host[:port][/path])")
        if "@" in value or re.search(r":[^/]*$", value.split("/", 1)[1] if "/" in value else ""):
            raise f.fail(key, "names a repository prefix: no tag or digest")
    return SignedIdentity(mode="remap", prefix=_canonical_prefix(prefix), signed_prefix=_canonical_prefix(signed))


def _canonical_prefix(prefix: str) -> str:
    """Docker Hub's spellings as ``docker.io/...``, like the repositories they are compared with."""
    prefix = prefix.rstrip("/")
    for alias in ("index.docker.io", "registry-1.docker.io"):
        if prefix == alias or prefix.startswith(alias + "/"):
            return "docker.io" + prefix[len(alias):]
    return prefix


def parse_security(reader: Locator, data: object) -> SecurityPolicy:
    if data is None:
        return SecurityPolicy()
    f = _Fields(reader, data, ("security",), SECURITY_KEYS)
    binds = f.strs("allowed_bind_paths")
    for b in binds:
        if not b.startswith("/"):
            raise f.fail("allowed_bind_paths", f"{b!r} must be an absolute path")
    values: dict[str, Any] = {k: f.bool_(k, getattr(SecurityPolicy, k)) for k in SECURITY_BOOLS}  # model defaults
    values.update({k: f.strs(k) for k in SECURITY_LISTS})
    values["allowed_bind_paths"] = binds
    values["allowed_capabilities"] = tuple(c.upper().removeprefix("CAP_") for c in values["allowed_capabilities"])
    for name in values["adopt_projects"]:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise f.fail("adopt_projects", f"{name!r} is not a Compose project name")
    return SecurityPolicy(**values)


def parse_registries(reader: Locator, data: object) -> RegistriesConfig:
    if data is None:
        return RegistriesConfig()
    f = _Fields(reader, data, ("registries",), {"insecure", "auth_file"})
    auth = f.str_("auth_file")
    return RegistriesConfig(insecure=f.strs("insecure"), auth_file=Path(auth) if auth else None)


def parse_commit_verification(reader: Locator, data: object) -> CommitVerification | None:
    if data is None:
        return None
    f = _Fields(reader, data, ("source", "verify"), {"mode", "allowed_signers", "gpg_keyring"})
    mode = f.str_("mode") or CommitVerification.mode
    if mode not in ("ssh", "gpg"):
        raise f.fail("mode", "must be ssh or gpg")
    signers, keyring = f.str_("allowed_signers"), f.str_("gpg_keyring")
    if mode == "ssh" and not signers:
        raise ConfigError("mode ssh needs allowed_signers", reader.loc(("source", "verify")))
    if mode == "gpg" and not keyring:
        raise ConfigError("mode gpg needs gpg_keyring", reader.loc(("source", "verify")))
    return CommitVerification(
        mode=mode,
        allowed_signers=Path(signers) if signers else None,
        gpg_keyring=Path(keyring) if keyring else None,
    )
