"""The admin sidebar (Unfold's `SIDEBAR["navigation"]`): the support pages, then the model admin.

Unfold shows either its default list of apps or an explicit navigation, not both, so the
navigation repeats the apps and models the person may see (the same `get_app_list` the default
list uses). Each page link names the check its view applies, so nobody is shown a link that
would answer 403 or 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse


def sidebar(request: HttpRequest) -> list[dict[str, Any]]:
    pages = {
        "title": "Support",
        "items": [
            {
                "title": "Agent console",
                "icon": "support_agent",
                "link": reverse("workspace:console_home"),
                "permission": "apps.workspace.views.console_visible",
            },
            {
                "title": "Analytics",
                "icon": "monitoring",
                "link": reverse("analytics:dashboard"),
                "permission": "apps.analytics.views.dashboard_visible",
            },
        ],
    }
    models = [
        {
            "title": app["name"],
            "items": [
                {"title": model["name"], "link": model["admin_url"]}
                for model in app["models"]
                if model.get("admin_url")
            ],
        }
        for app in admin.site.get_app_list(request)
    ]
    return [pages, *models]
