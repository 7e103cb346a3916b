"""Image retention: no full disks from old versions, and no pull that cannot fit.

Only images the agent pulled itself (recorded in the store when a pull really
happened) are ever removed, and never one that any container on the engine
uses (the agent's or anyone else's, running or stopped) or that a kept good
revision names (the manual-rollback window, ``retention.rollback_revisions``
per stack). Removal drops the agent's digest reference, never forced: an image
someone also tagged or uses stays.

After a commit, ``prune`` removes what nothing needs any more. Before STAGE,
``ensure_space`` compares the engine's free space with what the pulls need
(their layer sizes from the registry's manifests, when it tells them, plus
``retention.min_free_space`` kept free) and, when short, removes
the older rollback images first, oldest pull first. If that is still not
enough the update fails before anything stops, with an ``EngineError``: it is
retryable, because space can come back (logs rotated, an operator cleaning up)
and the commit itself is not at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from gitops_edge.errors import EdgeError, EngineError
from gitops_edge.ports.images import ImageSizes
from gitops_edge.ports.runtime import ContainerRuntime
from gitops_edge.ports.store import EngineStore

log = logging.getLogger("gitops_edge.engine.retention")

@dataclass(frozen=True)
class Pruned:
    removed: tuple[str, ...] = ()
    freed: int = 0  # bytes, as the engine sized the images (shared layers make it an upper bound)


def record_pull(store: EngineStore, runtime: ContainerRuntime, ref: str) -> None:
    """Remember that the agent pulled ``ref`` (it may then remove it one day)."""
    info = runtime.image_info(ref)
    if info is not None:
        store.image_pulled(ref, info[0], info[1])


def rollback_images(store: EngineStore) -> tuple[set[str], set[str]]:
    """(images of each stack's newest good revision, images of the older kept ones)."""
    current: set[str] = set()
    older: set[str] = set()
    for stack in store.good_stacks():
        for i, (_rev, _specs, images) in enumerate(store.good_revisions(stack)):
            (current if i == 0 else older).update(images.values())
    return current, older - current


def prune(store: EngineStore, runtime: ContainerRuntime, *, spare: Collection[str] = (),
          also_rollback: bool = False, enough: int | None = None) -> Pruned:
    """Remove pulled images nothing needs, oldest pull first.

    ``also_rollback``: the older good revisions' images may go too (short of space);
    ``spare``: never these; ``enough``: stop once this many bytes are freed.
    """
    current, older = rollback_images(store)
    keep = set(spare) | current | (set() if also_rollback else older)
    in_use = runtime.images_in_use()
    pulled = store.pulled_images()
    kept_ids = {pulled[ref][0] for ref in keep if ref in pulled}
    removed: list[str] = []
    freed = 0
    for ref, (image_id, size, _at) in pulled.items():
        if enough is not None and freed >= enough:
            break
        if ref in keep or image_id in in_use or image_id in kept_ids:
            continue
        if runtime.image_info(ref) is None:  # removed by someone else
            store.forget_image(ref)
            continue
        if runtime.remove_image(ref):
            store.forget_image(ref, freed=size)
            removed.append(ref)
            freed += size
    if removed:
        log.info("removed %d unused image(s), about %.1f MB", len(removed), freed / 1e6)
    return Pruned(tuple(removed), freed)


def prune_after_commit(store: EngineStore, runtime: ContainerRuntime) -> Pruned:
    """The retention step after COMMIT; a failure here never fails the sync."""
    try:
        return prune(store, runtime)
    except EdgeError as exc:
        log.warning("could not remove unused images: %s", exc)
        return Pruned()


UNPACK_FACTOR = 2  # a layer is downloaded compressed and unpacked beside it: about twice its size on disk


def ensure_space(store: EngineStore, runtime: ContainerRuntime, to_pull: Collection[str], min_free: int,
                 sizes: ImageSizes | None = None, platforms: Mapping[str, str] | None = None) -> None:
    """Make room for ``to_pull`` before anything stops, or fail the update with a clear message.

    Needed: ``min_free`` plus, for each image whose size the registry tells
    (``sizes``, for the platform in ``platforms`` it is pulled for), ``UNPACK_FACTOR`` times
    its compressed layers.
    """
    if not to_pull:
        return
    platforms = platforms or {}
    known = [sizes.pull_size(ref, platforms.get(ref)) for ref in to_pull] if sizes is not None else []
    pulls = sum(n for n in known if n is not None) * UNPACK_FACTOR
    need = min_free + pulls
    if need <= 0:
        return
    free = runtime.free_space()
    if free is None:
        log.debug("free space of the engine's data root is not visible from here; not checked")
        return
    if free >= need:
        return
    pruned = prune(store, runtime, spare=to_pull, also_rollback=True, enough=need - free)
    free = runtime.free_space() or 0
    if free >= need:
        log.warning("short of space for %d image(s): removed %d older rollback image(s)",
                    len(to_pull), len(pruned.removed))
        return
    unknown = sum(1 for n in known if n is None) if sizes is not None else len(to_pull)
    raise EngineError(
        f"not enough free space on the Docker data root for {len(to_pull)} new image(s): "
        f"{free / 1e6:.0f} MB free, {need / 1e6:.0f} MB needed ({pulls / 1e6:.0f} MB for the pulls"
        + (f", {unknown} of unknown size" if unknown else "")
        + f", retention.min_free_space {min_free / 1e6:.0f} MB; removed {len(pruned.removed)} older "
        "rollback image(s)); nothing was changed"
    )
