"""The sigstore trusted root a rule names, and whether the device clock can be trusted with it.

A device without a real-time clock boots in 1970 (or at its image's build
date) until NTP answers. sigstore then filters out every CA and log key as
"not yet valid" and the refusal reads like an expired or unknown signer;
worse, an operator may "fix" it by loosening trust. So before any check that
depends on the current time, a clock before a floor date is reported as
what it is, and as retryable: the next sync, after NTP, will do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gitops_edge.adapters.registry.keyless_windows import parse_time
from gitops_edge.errors import RETRYABLE, TrustError
from gitops_edge.model.trust import TrustRule

# No signature this release verifies can be older than the year it was built in
# (sigstore's own roots start in 2021); a clock before this is simply not set.
BUILD_FLOOR = datetime(2026, 1, 1, tzinfo=UTC)


def root_document(rule: TrustRule) -> dict[str, Any]:
    """The trusted root as JSON: the rule's file, or the copy shipped in the sigstore package."""
    try:
        if rule.trusted_root is not None:
            doc = json.loads(rule.trusted_root.read_bytes())
        else:
            from importlib.resources import files

            store = files("sigstore") / "_store" / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json"
            doc = json.loads(store.read_bytes())
    except (OSError, ValueError, ModuleNotFoundError) as exc:
        where = rule.trusted_root or "sigstore production (offline copy)"
        raise TrustError(f"cannot load trusted root {where}: {one_line(exc)}") from None
    if not isinstance(doc, dict):
        raise TrustError(f"trusted root {rule.trusted_root}: not a JSON object")
    return doc


def load_trusted_root(rule: TrustRule) -> tuple[Any, dict[str, Any]]:
    """sigstore's ``TrustedRoot`` for the rule, and the same root as JSON (for the validity windows).

    Without a file: the sigstore package's cached production root, offline (no TUF refresh on a device).
    """
    from sigstore.models import ClientTrustConfig, TrustedRoot

    try:
        if rule.trusted_root is None:
            root = ClientTrustConfig.production(offline=True).trusted_root
            return root, root._inner.to_dict()  # the package's own parsed copy of the same JSON
        return TrustedRoot.from_file(str(rule.trusted_root)), json.loads(rule.trusted_root.read_bytes())
    except Exception as exc:  # missing file, bad JSON, no TUF cache...
        where = rule.trusted_root or "sigstore production (offline cache)"
        raise TrustError(f"cannot load trusted root {where}: {one_line(exc)}") from None


def clock_floor(root: dict[str, Any]) -> datetime:
    """The earliest moment a correct clock can read: the build floor, or the root's first validity start."""
    starts = [BUILD_FLOOR]
    for section in ("certificateAuthorities", "timestampAuthorities", "tlogs", "ctlogs"):
        for item in root.get(section) or []:
            if not isinstance(item, dict):
                continue
            window = item.get("validFor") or (item.get("publicKey") or {}).get("validFor") or {}
            start = window.get("start") if isinstance(window, dict) else None
            if isinstance(start, str):
                try:
                    starts.append(parse_time(start))
                except TrustError:
                    continue
    earliest_in_root = min(starts[1:], default=BUILD_FLOOR)
    return max(BUILD_FLOOR, earliest_in_root)


def check_clock(now: datetime, root: dict[str, Any]) -> None:
    """Refuse, retryably, when ``now`` is before any time a set clock could show."""
    floor = clock_floor(root)
    if now < floor:
        raise TrustError(f"the device clock is not set (it reads {now:%Y-%m-%dT%H:%M:%SZ}, before "
                         f"{floor:%Y-%m-%d}); certificate validity cannot be checked, retrying later",
                         retry=RETRYABLE)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
