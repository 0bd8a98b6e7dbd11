"""REST API v1 routes, collected from the apps.

Each app contributes an `urls.py` with its router; include it in the block below. The
catch-all at the end must stay last: it answers unknown URLs with the JSON error body.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.actions import apis as actions_apis
from apps.analytics import apis as analytics_apis
from apps.conversations import apis as conversations_apis
from apps.integrations.api import api_not_found
from apps.knowledge import apis as knowledge_apis
from apps.workspace import apis as workspace_apis

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # --- App routes ---
    path("", include("apps.integrations.urls")),
    path("", include(conversations_apis.router.urls)),
    path("", include(knowledge_apis.router.urls)),
    path("", include(analytics_apis.urlpatterns)),
    path("", include(workspace_apis.router.urls)),
    path("", include(actions_apis.router.urls)),
    # --- Keep last ---
    re_path(r"^(?P<path>.*)$", api_not_found, name="api-not-found"),
]
