"""Fixed-window counters in the shared cache (Redis), so every web process counts together."""

from __future__ import annotations

import logging
import time

from asgiref.sync import sync_to_async
from django.core.cache import cache

logger = logging.getLogger(__name__)


def hit(bucket: str, *, limit: int, window: int = 60) -> bool:
    """Count one hit in `bucket`; True while the bucket is within `limit` per `window` seconds.

    A sliding-window counter: this window's count plus the previous window's, weighted by how
    much of it still lies within the last `window` seconds, so a burst cannot double its limit
    by straddling a window boundary. A limit of 0 turns the bucket off. When the cache is down
    we let traffic through: rate limits protect the service, and refusing every customer would
    be the bigger outage.
    """
    if limit <= 0:
        return True
    now = time.time()
    index = int(now // window)
    current, previous = f"rl:{bucket}:{index}", f"rl:{bucket}:{index - 1}"
    try:
        cache.add(current, 0, timeout=2 * window + 5)
        try:
            count = cache.incr(current)
        except ValueError:
            # The key expired between add and incr.
            cache.set(current, 1, timeout=2 * window + 5)
            count = 1
        earlier = cache.get(previous) or 0
    except Exception:  # see the docstring: fail open on cache errors
        logger.warning("rate limit cache unavailable; allowing %s", bucket, exc_info=True)
        return True
    overlap = 1 - (now % window) / window
    return count + earlier * overlap <= limit


def hit_all(buckets: list[tuple[str, int]], *, window: int = 60) -> bool:
    """Count a hit in every bucket (so each stays accurate); True if all are within limits."""
    allowed = True
    for bucket, limit in buckets:
        allowed = hit(bucket, limit=limit, window=window) and allowed
    return allowed


# Cache calls block on the network; run them off the event loop without taking the one
# thread that database work is serialised on.
hit_all_async = sync_to_async(hit_all, thread_sensitive=False)
