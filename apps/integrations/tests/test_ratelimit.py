import pytest
from django.conf import settings
from django.core.cache import cache

from apps.core import ratelimit


@pytest.fixture(autouse=True)
def _redis_cache():
    assert settings.REDIS_URL, "these tests need REDIS_URL: the limiter is shared through Redis"
    cache.clear()


def test_requests_over_the_limit_in_one_window_are_refused():
    results = [ratelimit.hit("unit", limit=3, window=60, now=1200.5) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert results[-1].retry_after == 60  # the window 1200-1260 ends in 59.5 s, rounded up


def test_a_new_window_starts_a_new_count():
    for _ in range(3):
        ratelimit.hit("unit-2", limit=3, window=60, now=1200.0)
    assert not ratelimit.hit("unit-2", limit=3, window=60, now=1259.0).allowed
    assert ratelimit.hit("unit-2", limit=3, window=60, now=1260.0).allowed


def test_buckets_are_counted_apart():
    assert ratelimit.hit("a", limit=1, window=60, now=60.0).allowed
    assert ratelimit.hit("b", limit=1, window=60, now=60.0).allowed
    assert not ratelimit.hit("a", limit=1, window=60, now=60.0).allowed
