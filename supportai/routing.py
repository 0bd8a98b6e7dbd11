"""Websocket routes. Each app contributes its own list."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from apps.conversations.routing import websocket_urlpatterns as chat_websocket_urlpatterns
from apps.knowledge.consumers import KnowledgeAdminConsumer
from apps.workspace.consumers import ConsoleConsumer

websocket_urlpatterns: list = [
    *chat_websocket_urlpatterns,
    # Admin pages (session cookie, so only from this site's own pages, or another site could
    # open it with the admin's cookie): live knowledge sync and reindex progress.
    path(
        "ws/admin/knowledge/",
        AllowedHostsOriginValidator(AuthMiddlewareStack(KnowledgeAdminConsumer.as_asgi())),
    ),
    # Agent console (session cookie, so only from this site's own pages): queue and replies.
    path(
        "ws/console/",
        AllowedHostsOriginValidator(AuthMiddlewareStack(ConsoleConsumer.as_asgi())),
    ),
]
