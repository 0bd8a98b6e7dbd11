"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from supportai.edge import TrustedProxyMiddleware  # noqa: E402
from supportai.routing import websocket_urlpatterns  # noqa: E402

# The real client behind trusted reverse proxies, for HTTP and websockets alike (rate limits).
application = TrustedProxyMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # Origin checks are per tenant (widget keys bind allowed origins), so each consumer
            # checks the Origin header itself instead of a global AllowedHostsOriginValidator.
            "websocket": URLRouter(websocket_urlpatterns),
        }
    )
)
