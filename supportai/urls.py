"""URL configuration."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from apps.analytics import views as analytics_views
from apps.core import views as core_views
from apps.tenants import views as tenant_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("supportai.api_urls")),
    path("metrics", analytics_views.metrics_view, name="metrics"),
    path("dashboard/", include("apps.analytics.urls")),
    path("console/", include("apps.workspace.urls")),
    # An invited person accepts here (the link in the invitation email).
    path("invitations/<str:token>/", tenant_views.invitation, name="invitation"),
    # The demo order system the demo tenant's actions call (/demo/orders/; ACTIONS_DEMO_ORDERS).
    path("", include("apps.actions.urls")),
    # Chat over HTTP (/chat/ask, /chat/stream, /chat/confirm) and the widget demo page (/demo/).
    path("", include("apps.assistant.urls")),
]
