"""The one rate limiter: a sliding window counted in the shared cache (Redis).

The chat websocket, the HTTP chat endpoints and the REST API all count here. Each bucket has one
counter per fixed window of `window` seconds, raised with an atomic INCR in the shared cache, so
every web process on every machine counts together. A hit is allowed while this window's count
plus the previous window's, weighted by how much of the previous window still lies within the
last `window` seconds, stays within the limit: a burst cannot double its limit by straddling a
window boundary, as it could with a fixed window. Refused hits count too, so a client that keeps
hammering stays refused.

If the cache is unreachable the limiter lets traffic through (and logs): rate limits protect the
service, and refusing every customer would be the bigger outage.

Buckets are named by the caller (`api:key:<id>`, `ws-message:ip:<address>`). Addresses come from
`client_address()`: the real client behind the proxies in `TRUSTED_PROXIES`, because
`supportai.edge.TrustedProxyMiddleware` rewrites the ASGI scope before any view or consumer runs
(a client cannot pick a fresh address per request by sending `X-Forwarded-For` itself).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import caches

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until a hit would be allowed again (0 while allowed)


def _wait(*, count: int, previous: int, elapsed: float, limit: int, window: int) -> float:
    """Seconds until one more hit fits, given this window's `count` (this hit included) and
    the previous window's, `elapsed` seconds into this window."""
    # Within this window, the previous window's weight shrinks until count + 1 fits ...
    if previous and count + 1 <= limit:
        return max(0.0, window * (1 - (limit - count - 1) / previous) - elapsed)
    # ... otherwise in the next window, where this window's count is the one that shrinks.
    rest = window - elapsed
    return rest + max(0.0, window * (1 - (limit - 1) / count)) if count else rest


class SlidingWindowLimiter:
    """Counts hits per bucket in a Django cache (by default the shared `default` one)."""

    def __init__(self, cache: Any = None, *, alias: str = "default", prefix: str = "rl") -> None:
        self._cache = cache
        self.alias = alias
        self.prefix = prefix

    @property
    def cache(self) -> Any:
        # Django's caches are per thread; look the connection up on every use.
        return self._cache if self._cache is not None else caches[self.alias]

    def _count(self, key: str, window: int) -> int:
        cache = self.cache
        cache.add(key, 0, timeout=2 * window + 5)
        try:
            return cache.incr(key)
        except ValueError:  # the key expired between add and incr
            cache.add(key, 0, timeout=2 * window + 5)
            return cache.incr(key)

    def hit(
        self, bucket: str, *, limit: int, window: int = 60, now: float | None = None
    ) -> RateLimitResult:
        """Count one hit in `bucket`; `allowed` while it is within `limit` per `window` seconds.

        A limit of 0 (or less) turns the bucket off.
        """
        if limit <= 0:
            return RateLimitResult(allowed=True, limit=limit, remaining=0, retry_after=0)
        now = time.time() if now is None else now
        index = int(now // window)
        elapsed = now - index * window
        try:
            count = self._count(f"{self.prefix}:{bucket}:{index}", window)
            previous = int(self.cache.get(f"{self.prefix}:{bucket}:{index - 1}") or 0)
        except Exception:  # see the module docstring: fail open on cache errors
            logger.warning("rate limit cache unavailable; allowing %s", bucket, exc_info=True)
            return RateLimitResult(allowed=True, limit=limit, remaining=limit, retry_after=0)
        used = count + previous * (1 - elapsed / window)
        allowed = used <= limit
        retry_after = 0
        if not allowed:
            wait = _wait(
                count=count, previous=previous, elapsed=elapsed, limit=limit, window=window
            )
            retry_after = max(1, math.ceil(wait))
        return RateLimitResult(
            allowed=allowed,
            limit=limit,
            remaining=max(0, math.floor(limit - used)),
            retry_after=retry_after,
        )

    def hit_all(
        self, buckets: Iterable[tuple[str, int]], *, window: int = 60, now: float | None = None
    ) -> RateLimitResult:
        """A hit in every bucket (each stays accurate); allowed only if every one allows it.

        The result is the tightest bucket's: the fewest remaining, the longest wait.
        """
        results = [self.hit(name, limit=limit, window=window, now=now) for name, limit in buckets]
        if not results:
            return RateLimitResult(allowed=True, limit=0, remaining=0, retry_after=0)
        tightest = min(results, key=lambda result: result.remaining)
        return RateLimitResult(
            allowed=all(result.allowed for result in results),
            limit=tightest.limit,
            remaining=tightest.remaining,
            retry_after=max(result.retry_after for result in results),
        )


limiter = SlidingWindowLimiter()
hit = limiter.hit
hit_all = limiter.hit_all
# Cache calls block on the network; run them off the event loop without taking the one
# thread that database work is serialised on.
hit_all_async = sync_to_async(hit_all, thread_sensitive=False)


def client_address(source: Any) -> str:
    """The client's address for keying limits: a Django request's `REMOTE_ADDR` or an ASGI
    scope's `client`, both already the real client behind trusted proxies (see above)."""
    if isinstance(source, dict):
        client = source.get("client")
        return str(client[0]) if client else "unknown"
    return source.META.get("REMOTE_ADDR") or "unknown"
