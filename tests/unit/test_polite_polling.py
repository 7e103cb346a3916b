"""Polite polling (pure parts): first poll spread, Retry-After parsing, the delay with a server's wish."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from gitops_edge.adapters.git.transport import parse_retry_after, retry_after_from_trace, throttle_status
from gitops_edge.core.config import parse_config
from gitops_edge.daemon.loop import BACKOFF_CAP_S, RETRY_AFTER_CAP_S, first_delay, next_delay
from gitops_edge.errors import ConfigError

NOW = 1_800_000_000.0


def test_first_poll_is_spread_over_the_whole_interval() -> None:
    rng = random.Random(1)
    delays = [first_delay(60, True, False, rng) for _ in range(2000)]
    assert all(0 <= d <= 60 for d in delays)
    assert min(delays) < 3 and max(delays) > 57  # the whole interval, not just the jitter
    assert sum(delays) / len(delays) == pytest.approx(30, abs=2)


def test_first_poll_is_immediate_when_not_spread_or_recovering() -> None:
    rng = random.Random(2)
    assert first_delay(60, False, False, rng) == 0.0
    assert first_delay(60, True, True, rng) == 0.0  # an interrupted switch is recovered at once


def test_spread_start_config_defaults_to_true() -> None:
    assert parse_config({"source": {"url": "/r"}}, file="a.yaml").source.spread_start is True
    off = parse_config({"source": {"url": "/r", "spread_start": False}}, file="a.yaml")
    assert off.source.spread_start is False
    with pytest.raises(ConfigError, match="true or false"):
        parse_config({"source": {"url": "/r", "spread_start": "yes"}}, file="a.yaml")


def test_retry_after_lengthens_the_backoff() -> None:
    rng = random.Random(3)
    assert next_delay(1, 0, 1, rng) == 2  # plain backoff
    assert next_delay(1, 0, 1, rng, retry_after_s=7) == 7  # the server asked for longer
    assert next_delay(10, 0, 3, rng, retry_after_s=7) == 80  # backoff already longer: it wins
    assert next_delay(1, 0, 1, rng, retry_after_s=None) == 2
    for _ in range(100):
        assert 7 <= next_delay(1, 2, 1, rng, retry_after_s=7) <= 9  # jitter on top, never sooner


def test_retry_after_is_capped() -> None:
    rng = random.Random(4)
    assert next_delay(60, 0, 1, rng, retry_after_s=10 * 86400) == RETRY_AFTER_CAP_S
    assert RETRY_AFTER_CAP_S >= BACKOFF_CAP_S


@pytest.mark.parametrize(
    ("stderr", "status"),
    [
        ("fatal: unable to access 'https://h/r.git/': The requested URL returned error: 429\n", 429),
        ("fatal: unable to access 'https://h/r.git/': The requested URL returned error: 503\n", 503),
        ("fatal: unable to access 'https://h/r.git/': The requested URL returned error: 500\n", None),
        ("fatal: Authentication failed for 'https://h/r.git/'\n", None),
        ("", None),
    ],
)
def test_throttle_status_from_git_stderr(stderr: str, status: int | None) -> None:
    assert throttle_status(stderr) == status


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7", NOW) == 7
    assert parse_retry_after(" 120 ", NOW) == 120
    assert parse_retry_after(formatdate(NOW + 90, usegmt=True), NOW) == pytest.approx(90)
    assert parse_retry_after(formatdate(NOW - 90, usegmt=True), NOW) == 0  # in the past: now
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after("", NOW) is None


TRACE = """\
18:50:45.944704 http.c:684              => Send header: GET /r.git/info/refs?service=git-upload-pack HTTP/1.1
18:50:45.944704 http.c:684              => Send header: Authorization: Basic <redacted>
18:50:45.949238 http.c:684              <= Recv header: HTTP/1.1 401 Unauthorized
18:50:45.949260 http.c:684              <= Recv header: Retry-After: 99
18:50:45.949238 http.c:684              <= Recv header: HTTP/1.1 {status} Too Many Requests
18:50:45.949252 http.c:684              <= Recv header: Date: Fri, 27 Nov 2026 18:50:45 GMT
18:50:45.949260 http.c:684              <= Recv header: retry-after: 7
18:50:45.949266 http.c:684              <= Recv header: Content-Length: 0
"""


def test_retry_after_comes_from_the_last_response_in_the_trace() -> None:
    assert retry_after_from_trace(TRACE.format(status=429), NOW) == 7
    assert retry_after_from_trace(TRACE.format(status=503), NOW) == 7
    assert retry_after_from_trace(TRACE.format(status=500), NOW) is None  # not a throttle
    last_without = TRACE.format(status=429).replace("retry-after: 7", "X-Other: 1")
    assert retry_after_from_trace(last_without, NOW) is None  # 99 belonged to the earlier response
    assert retry_after_from_trace("", NOW) is None
