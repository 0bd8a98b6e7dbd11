"""The one rate limiter: a sliding window in Redis, shared by every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.test import RequestFactory

from apps.core import ratelimit
from apps.core.ratelimit import SlidingWindowLimiter


@pytest.fixture(autouse=True)
def _redis_cache():
    assert settings.REDIS_URL, "these tests need REDIS_URL: the limiter is shared through Redis"
    cache.clear()


def _bucket() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_hits_over_the_limit_in_one_window_are_refused():
    bucket = _bucket()
    results = [ratelimit.hit(bucket, limit=3, window=60, now=1200.0) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert [r.retry_after for r in results][:3] == [0, 0, 0]


def test_a_burst_cannot_double_its_limit_across_a_window_boundary():
    bucket = _bucket()
    assert all(ratelimit.hit(bucket, limit=3, window=60, now=1259.0).allowed for _ in range(3))
    # A fixed window would start counting afresh at 1260 and allow 3 more within a second.
    assert not ratelimit.hit(bucket, limit=3, window=60, now=1260.0).allowed


def test_the_previous_window_counts_less_as_it_slides_away():
    early, late = _bucket(), _bucket()
    for bucket in (early, late):
        for _ in range(3):
            ratelimit.hit(bucket, limit=3, window=60, now=1200.0)
    # 30 s into the next window half of the previous window's 3 hits still count: 1 + 1.5.
    assert ratelimit.hit(early, limit=3, window=60, now=1290.0).allowed
    # 1 s into it, almost all of them do: 1 + 2.95.
    assert not ratelimit.hit(late, limit=3, window=60, now=1261.0).allowed


def test_retry_after_says_when_a_hit_is_allowed_again():
    waited, impatient = _bucket(), _bucket()
    for bucket in (waited, impatient):
        results = [ratelimit.hit(bucket, limit=3, window=60, now=1200.0) for _ in range(4)]
    refused = results[-1]
    assert not refused.allowed
    # Four hits (the refused one counts) at 1200: at 1290 they weigh 4 * 0.5, plus the new one.
    assert refused.retry_after == 90
    assert not ratelimit.hit(impatient, limit=3, window=60, now=1289.0).allowed
    assert ratelimit.hit(waited, limit=3, window=60, now=1290.0).allowed


def test_buckets_are_counted_apart_and_a_zero_limit_is_off():
    a, b = _bucket(), _bucket()
    assert ratelimit.hit(a, limit=1, window=60, now=60.0).allowed
    assert ratelimit.hit(b, limit=1, window=60, now=60.0).allowed
    assert not ratelimit.hit(a, limit=1, window=60, now=60.0).allowed
    assert all(ratelimit.hit(a, limit=0, now=60.0).allowed for _ in range(5))


def test_hit_all_counts_every_bucket_and_refuses_if_any_is_over():
    key, client = _bucket(), _bucket()
    assert ratelimit.hit_all([(key, 5), (client, 1)], now=60.0).allowed
    refused = ratelimit.hit_all([(key, 5), (client, 1)], now=60.0)
    assert not refused.allowed
    assert refused.remaining == 0
    # The key's bucket counted both hits although the client's refused the second.
    assert ratelimit.hit(key, limit=5, now=60.0).remaining == 2


def test_two_limiters_with_their_own_connections_share_the_count():
    bucket = _bucket()
    first = SlidingWindowLimiter(caches.create_connection("default"))
    second = SlidingWindowLimiter(caches.create_connection("default"))
    assert first.cache is not second.cache
    allowed = [
        (first if n % 2 else second).hit(bucket, limit=5, now=600.0).allowed for n in range(10)
    ]
    assert allowed == [True] * 5 + [False] * 5


HITS_IN_A_PROCESS = """
import json, sys
import django
django.setup()
from apps.core import ratelimit
bucket, limit, hits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(json.dumps(sum(ratelimit.hit(bucket, limit=limit, now=900.0).allowed for _ in range(hits))))
"""


def test_processes_share_one_count_through_redis():
    bucket, limit = _bucket(), 12
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "supportai.settings"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", HITS_IN_A_PROCESS, bucket, str(limit), "10"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    allowed = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        allowed.append(json.loads(out.strip().splitlines()[-1]))
    # 30 hits from three processes against one limit of 12: exactly 12 get through.
    assert sum(allowed) == limit


def test_an_unreachable_cache_lets_traffic_through():
    down = RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    limiter = SlidingWindowLimiter(down)
    assert all(limiter.hit(_bucket(), limit=1).allowed for _ in range(3))


async def test_behind_a_trusted_proxy_the_client_not_the_proxy_is_limited():
    from supportai.edge import TrustedProxyMiddleware

    seen = {}

    async def app(scope, receive, send):
        seen["client"] = ratelimit.client_address(scope)

    proxied = TrustedProxyMiddleware(app, trusted=["10.0.0.0/8"])
    scope = {
        "type": "websocket",
        "client": ("10.0.0.7", 40000),
        "headers": [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.3")],
    }
    await proxied(scope, None, None)
    assert seen["client"] == "203.0.113.9"
    # A client that is not a trusted proxy cannot name another address.
    await proxied({**scope, "client": ("198.51.100.4", 40000)}, None, None)
    assert seen["client"] == "198.51.100.4"
    request = RequestFactory().get("/chat/ask", REMOTE_ADDR="203.0.113.9")
    assert ratelimit.client_address(request) == "203.0.113.9"
