"""Image retention (engine/retention.py): only the images of the current and the kept rollback
revisions stay; images the agent did not pull or that any container uses are never removed;
short of space, older rollback images go first, and if still short nothing stops."""

from __future__ import annotations

from dataclasses import replace

from gitops_edge.errors import EngineError
from gitops_edge.model.config import RetentionConfig
from gitops_edge.model.spec import StackSpec
from gitops_edge.model.status import Outcome
from tests.engine.conftest import Bench, service, stack


def _rev(i: int) -> str:
    return f"{i:040x}"


def _one(image: str) -> StackSpec:
    return stack("s", service("web", image))


def _pinned(bench: Bench) -> dict[str, str]:
    """tag -> the pinned reference the fake resolves it to."""
    return {f"app:v{i}": bench.runtime.resolve_image(f"app:v{i}", "missing") for i in range(10)}


def test_ten_updates_leave_the_current_and_rollback_images_only(bench: Bench) -> None:
    pins = _pinned(bench)
    bench.runtime.pulled.add(pins["app:v2"])  # present before the agent: not its to remove
    for i in range(10):
        bench.commit(_rev(i + 1), _one(f"app:v{i}"))
        assert bench.sync().outcome is Outcome.APPLIED
        if i == 0:  # someone else's container uses the agent's first image
            bench.runtime.add_container("other", "x", image=pins["app:v0"])
    kept = {tag for tag, ref in pins.items() if ref in bench.runtime.pulled}
    # the rollback window is five good revisions of s (v5..v9); v0 is in use, v2 not the agent's
    assert kept == {"app:v0", "app:v2", "app:v5", "app:v6", "app:v7", "app:v8", "app:v9"}
    assert bench.store.freed == 3 * bench.runtime.image_size  # v1, v3, v4


def test_short_of_space_older_rollback_images_go_first_then_the_update_fails_before_anything_stops(
        bench: Bench) -> None:
    pins = _pinned(bench)
    bench.config = replace(bench.config, retention=RetentionConfig(min_free_bytes=25_000_000))
    bench.runtime.free = 50_000_000
    for i in range(3):  # each pull costs 10 MB: 20 MB left, all kept for rollback
        bench.commit(_rev(i + 1), _one(f"app:v{i}"))
        assert bench.sync().outcome is Outcome.APPLIED
    bench.commit(_rev(4), _one("app:v3"))
    assert bench.sync().outcome is Outcome.APPLIED  # the oldest rollback image made room
    assert pins["app:v0"] not in bench.runtime.pulled
    assert {pins["app:v1"], pins["app:v2"], pins["app:v3"]} <= bench.runtime.pulled

    bench.runtime.free = 1_000_000  # the disk filled up with something else
    before = {c.id for c in bench.runtime.containers.values()}
    bench.commit(_rev(5), _one("app:v4"))
    result = bench.sync()
    assert result.outcome is Outcome.ERROR and isinstance(result.error, EngineError)
    assert result.error.retry.retryable and "not enough free space" in result.reason
    assert {c.id for c in bench.runtime.containers.values()} == before  # nothing stopped
    assert pins["app:v3"] in bench.runtime.pulled  # the running image stays
    assert pins["app:v1"] not in bench.runtime.pulled  # rollback images went first


class Sizes:
    """The registry's word on how big each pull is (compressed)."""

    def __init__(self, size: int | None) -> None:
        self.size = size

    def pull_size(self, pinned: str, platform: str | None = None) -> int | None:
        return self.size


def test_layer_sizes_from_the_registry_count_towards_the_space_needed(bench: Bench) -> None:
    pins = _pinned(bench)
    bench.runtime.free = 100_000_000
    for i in range(2):
        bench.commit(_rev(i + 1), _one(f"app:v{i}"))
        assert bench.sync().outcome is Outcome.APPLIED  # no min_free_space, no sizes: not checked
    agent = bench.agent()
    agent.sizes = Sizes(45_000_000)  # x2 unpacked: 90 MB needed, 80 MB free
    bench.commit(_rev(3), _one("app:v2"))
    assert agent.sync().outcome is Outcome.APPLIED
    assert pins["app:v0"] not in bench.runtime.pulled  # the older rollback image made room

    agent.sizes = Sizes(60_000_000)  # 120 MB needed: even with every rollback image gone, short
    bench.commit(_rev(4), _one("app:v3"))
    result = agent.sync()
    assert result.outcome is Outcome.ERROR and "120 MB needed" in result.reason
    assert pins["app:v2"] in bench.runtime.pulled and pins["app:v3"] not in bench.runtime.pulled
