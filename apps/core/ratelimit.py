"""A fixed-window rate limiter on the Django cache (Redis in production and tests).

Each (bucket, window) pair is one counter created with an expiry and raised with an atomic
INCR, so every web process shares the count. If the cache is unreachable the limiter lets the
request through (and logs): losing rate limits for a moment is better than losing the API.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.core.cache import cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until the current window ends


def hit(bucket: str, *, limit: int, window: int = 60, now: float | None = None) -> RateLimitResult:
    """Count one request against `bucket`; `allowed` is False once `limit` is exceeded."""
    now = time.time() if now is None else now
    window_start = int(now // window) * window
    retry_after = max(1, math.ceil(window_start + window - now))
    key = f"ratelimit:{bucket}:{window_start}"
    try:
        cache.add(key, 0, timeout=window + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 0, timeout=window + 5)
            count = cache.incr(key)
    except Exception:
        logger.exception("rate limiter cache unavailable; allowing %s", bucket)
        return RateLimitResult(allowed=True, limit=limit, remaining=limit, retry_after=0)
    return RateLimitResult(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        retry_after=retry_after,
    )
