"""The spec hash: one value per service that decides keep or recreate.

Like Compose's config hash it leaves out what does not shape the container
(depends_on, profiles, pull_policy, replicas: a new count adds or removes
containers and keeps the others, the image as written: the *pinned*
image is compared separately, so a moved tag and an edited file give
different reasons). It folds in the docker names of the networks and
volumes the service uses, since renaming one changes the container.

A bind of a repository path is hashed by its repo path and content digest,
not by its host path: that names a per-revision tree, so hashing it would
recreate every such service on every commit, while the content digest
recreates exactly the services whose mounted files changed.
"""

from __future__ import annotations

import dataclasses
import hashlib

from gitops_edge.core.serialize import canonical_json, to_data
from gitops_edge.model.spec import Mount, ServiceSpec, StackSpec

NOT_HASHED = frozenset({"depends_on", "profiles", "pull_policy", "image", "replicas"})
HASHED_WHEN_SET = ("post_start", "pre_stop", "isolation")
"""Hashed only when set: a service without them keeps the hash it had before they were supported."""


def hashed_fields(spec: ServiceSpec) -> dict[str, object]:
    out = {
        f.name: to_data(getattr(spec, f.name))
        for f in dataclasses.fields(spec)
        if f.name not in NOT_HASHED
    }
    out["mounts"] = [_hashed_mount(m) for m in spec.mounts]
    for key in HASHED_WHEN_SET:
        if not out[key]:
            del out[key]
    return out


def _hashed_mount(mount: Mount) -> dict[str, object]:
    data: dict[str, object] = to_data(mount)
    if mount.content is None:
        del data["content"]  # so a spec without repository binds hashes as it always did
    else:
        del data["source"]  # the per-revision tree path; the content decides
    return data


def config_hash(stack: StackSpec, spec: ServiceSpec) -> str:
    nets = {n.key: n.name for n in stack.networks}
    vols = {v.key: v.name for v in stack.volumes}
    used = {
        "service": hashed_fields(spec),
        "networks": sorted(nets.get(a.network, a.network) for a in spec.networks),
        "volumes": sorted(
            vols.get(m.source or "", m.source or "") for m in spec.mounts if m.type == "volume"
        ),
    }
    return hashlib.sha256(canonical_json(used).encode()).hexdigest()


def changed_fields(old: ServiceSpec, new: ServiceSpec) -> list[str]:
    """Names of the fields that differ, for a plan's reason."""
    a, b = hashed_fields(old), hashed_fields(new)
    return [k for k in (*a, *(k for k in b if k not in a)) if a.get(k) != b.get(k)]


def changed_mount_content(old: ServiceSpec, new: ServiceSpec) -> list[str] | None:
    """Repo paths whose mounted content changed, when that is all that changed in the mounts.

    None when the mounts differ otherwise (added, removed, retargeted, another path).
    """
    if len(old.mounts) != len(new.mounts):
        return None
    paths = []
    for a, b in zip(old.mounts, new.mounts, strict=True):
        ha, hb = _hashed_mount(a), _hashed_mount(b)
        if ha == hb:
            continue
        if a.content is None or b.content is None:
            return None
        path = b.content.rsplit(" ", 1)[0]
        del ha["content"], hb["content"]
        if ha != hb or a.content.rsplit(" ", 1)[0] != path:
            return None
        paths.append(path)
    return paths
