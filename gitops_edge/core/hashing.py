"""The spec hash: one value per service that decides keep or recreate.

Like Compose's config hash it leaves out what does not shape the container
(depends_on, profiles, pull_policy, the image as written: the *pinned*
image is compared separately, so a moved tag and an edited file give
different reasons). It folds in the docker names of the networks and
volumes the service uses, since renaming one changes the container.
"""

from __future__ import annotations

import dataclasses
import hashlib

from gitops_edge.core.serialize import canonical_json, to_data
from gitops_edge.model.spec import ServiceSpec, StackSpec

NOT_HASHED = frozenset({"depends_on", "profiles", "pull_policy", "image"})


def hashed_fields(spec: ServiceSpec) -> dict[str, object]:
    return {
        f.name: to_data(getattr(spec, f.name))
        for f in dataclasses.fields(spec)
        if f.name not in NOT_HASHED
    }


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
    return [k for k in a if a[k] != b.get(k)]
