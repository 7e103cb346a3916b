"""agent.next_delay: the schedule between syncs."""

from __future__ import annotations

import random

import pytest

from gitops_edge.daemon.loop import BACKOFF_CAP_S, next_delay


def test_interval_plus_jitter_stays_in_bounds() -> None:
    rng = random.Random(7)
    delays = [next_delay(60, 10, 0, rng) for _ in range(2000)]
    assert all(60 <= d <= 70 for d in delays)
    # jitter spreads devices out: not all at one end
    assert min(delays) < 61 and max(delays) > 69


def test_no_jitter_is_exactly_the_interval() -> None:
    rng = random.Random(1)
    assert {next_delay(2, 0, 0, rng) for _ in range(50)} == {2.0}


@pytest.mark.parametrize(("failures", "base"), [(1, 20), (2, 40), (3, 80), (5, 320)])
def test_backoff_doubles_per_failure(failures: int, base: float) -> None:
    rng = random.Random(3)
    assert next_delay(10, 0, failures, rng) == base
    for _ in range(200):
        assert base <= next_delay(10, 5, failures, rng) <= base + 5


@pytest.mark.parametrize("failures", [7, 16, 17, 100, 10_000])
def test_backoff_is_capped(failures: int) -> None:
    rng = random.Random(5)
    assert next_delay(60, 0, failures, rng) == BACKOFF_CAP_S
    assert BACKOFF_CAP_S <= next_delay(60, 10, failures, rng) <= BACKOFF_CAP_S + 10


def test_a_long_interval_retries_a_failure_sooner_backing_off_to_the_cap() -> None:
    """A push-driven fleet polls hourly: a hinted sync that failed must not wait an hour."""
    rng = random.Random(9)
    assert next_delay(3600, 0, 0, rng) == 3600
    assert [next_delay(3600, 0, f, rng) for f in (1, 2, 3, 4, 5, 6, 50)] == [60, 120, 240, 480, 900, 900, 900]
    assert next_delay(3600, 0, 1, rng, retry_after_s=600) == 600  # the server's Retry-After still wins


def test_backoff_resets_after_success() -> None:
    rng = random.Random(11)
    assert next_delay(30, 0, 4, rng) > next_delay(30, 0, 0, rng) == 30
