"""Who else hears about each event, besides webhooks: an explicit list of handlers.

An app that wants every dispatched event (analytics first) registers a handler once, from its
`AppConfig.ready()`:

    from apps.events import fanout
    fanout.register(analytics_services.event_ingest)

The dispatcher calls every handler with the `Event`, inside the dispatch transaction, each in
its own savepoint. Handlers must be quick (enqueue a task for slow work) and idempotent: an
event can reach a handler twice if a worker dies after the handler ran but before the commit.
A handler that raises is logged and skipped for that event; the `events` table stays the
record, so a roll-up can always be recomputed from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from apps.events.models import Event

logger = logging.getLogger(__name__)

EventHandler = Callable[[Event], None]

_handlers: list[EventHandler] = []


def register(handler: EventHandler) -> EventHandler:
    """Add `handler` (once; registering it again is a no-op). Usable as a decorator."""
    if handler not in _handlers:
        _handlers.append(handler)
    return handler


def unregister(handler: EventHandler) -> None:
    if handler in _handlers:
        _handlers.remove(handler)


def handlers() -> list[EventHandler]:
    return list(_handlers)


def publish(event: Event) -> None:
    """Hand `event` to every registered handler."""
    for handler in list(_handlers):
        try:
            with transaction.atomic():
                handler(event)
        except Exception:
            logger.exception("event handler %r failed for event %s", handler, event.pk)
