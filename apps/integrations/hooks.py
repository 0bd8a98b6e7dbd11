"""What integrations plug into the layers below, connected once from `IntegrationsConfig.ready()`:
webhook deliveries for every dispatched event (a required fan-out handler: a failure fails the
dispatch, which is retried). Importing `schema` registers the OpenAPI description of API keys."""

from __future__ import annotations

from apps.events import fanout
from apps.integrations import schema, services  # noqa: F401  (schema: see above)


def connect() -> None:
    fanout.register(services.webhook_fanout, required=True)
