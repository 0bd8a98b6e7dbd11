"""Who hears about each dispatched event: an explicit list of handlers.

An app that wants every dispatched event registers a handler once, from its
`AppConfig.ready()`, so the events app imports none of the apps above it:

    from apps.events import fanout
    fanout.register(hooks.event_ingest)  # analytics
    fanout.register(services.webhook_fanout, required=True)  # integrations' webhooks

The dispatcher calls every handler with the `Event`, inside the dispatch transaction. Required
handlers (webhook deliveries) run first, and if one raises the whole dispatch rolls back: the
event stays undispatched and the beat sweep dispatches it again, so no webhook is lost. Other
handlers run each in its own savepoint; one that raises is logged and skipped for that event.
Handlers must be quick (enqueue a task for slow work) and idempotent: an event can reach a
handler twice if a worker dies after the handler ran but before the commit. The `events` table
stays the record, so a roll-up can always be recomputed from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from apps.events.models import Event

logger = logging.getLogger(__name__)

EventHandler = Callable[[Event], None]

_required: list[EventHandler] = []
_handlers: list[EventHandler] = []


def register(handler: EventHandler, *, required: bool = False) -> EventHandler:
    """Add `handler` (once; registering it again is a no-op). Usable as a decorator.

    A `required` handler's failure fails the dispatch (it is retried); any other handler's
    failure is logged and skipped.
    """
    if handler not in _required and handler not in _handlers:
        (_required if required else _handlers).append(handler)
    return handler


def unregister(handler: EventHandler) -> None:
    for registered in (_required, _handlers):
        if handler in registered:
            registered.remove(handler)


def handlers() -> list[EventHandler]:
    return [*_required, *_handlers]


def publish(event: Event) -> None:
    """Hand `event` to every registered handler, the required ones first."""
    for handler in list(_required):
        handler(event)
    for handler in list(_handlers):
        try:
            with transaction.atomic():
                handler(event)
        except Exception:
            logger.exception("event handler %r failed for event %s", handler, event.pk)
