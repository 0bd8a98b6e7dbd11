"""Run database code from async code, closing connections the way a request would.

channels' `database_sync_to_async` calls `close_old_connections()` outside the context that
asgiref runs the function in; Django keeps connections in context-local storage, so those
calls do not see the function's connection, and every worker thread keeps one open. Closing
inside the function fixes that; `CONN_MAX_AGE` then decides, as for requests, whether a
connection is kept for reuse.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

P = ParamSpec("P")
R = TypeVar("R")


def db_async(func: Callable[P, R], *, thread_sensitive: bool = True) -> Callable[P, Awaitable[R]]:
    """`func` as a coroutine function run in a worker thread with connection hygiene.

    thread_sensitive=True (the default) runs it on the one thread asgiref keeps for
    thread-sensitive code, which holds the process's database connection. False runs it in the
    loop's thread pool, for slow work (retrieval) that should not hold that thread; Django then
    keeps connections per asyncio context, not per thread, so such calls close theirs at the
    end rather than leave one open per conversation.
    """

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            if thread_sensitive:
                close_old_connections()
            else:
                connections.close_all()

    return sync_to_async(run, thread_sensitive=thread_sensitive)
