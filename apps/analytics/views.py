"""The Prometheus endpoint and the analytics dashboard for tenant owners and admins."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from apps.analytics import charts, selectors
from apps.analytics.insights import insights_csv
from apps.core import permissions
from apps.core.errors import NotFoundError
from apps.core.observability import metrics
from apps.core.observability.exporter import check_bearer
from supportai.logging import bind_tenant

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition, behind `Authorization: Bearer <METRICS_TOKEN>`."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are disabled")
    status = check_bearer(request.headers.get("Authorization", ""), token)
    if status == 401:
        response = HttpResponse("authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if status == 403:
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_LATEST)


def dashboard_visible(request: HttpRequest) -> bool:
    """Whether the dashboard lets this person in (the admin sidebar shows its link only then)."""
    return selectors.dashboard_tenants(user=request.user).exists()


def _viewer_tenant(request: HttpRequest) -> tuple[Any, list[Any]]:
    """The tenant the viewer asked for (or their first), and all they may see.

    Agents, and people of no tenant, get 403; a tenant that is not theirs is 404, as if it did
    not exist.
    """
    tenants = list(selectors.dashboard_tenants(user=request.user))
    if not tenants:
        raise PermissionDenied("Analytics are for owners and admins of a tenant.")
    slug = request.GET.get("tenant")
    if slug:
        try:
            tenant = permissions.resolve_tenant(
                user=request.user, slug=slug, min_role=selectors.DASHBOARD_ROLE
            )
        except NotFoundError as exc:
            raise Http404(exc.message) from exc
    else:
        tenant = tenants[0]
    request.tenant = tenant  # type: ignore[attr-defined] — for the access log line
    bind_tenant(tenant)
    return tenant, tenants


def _login_required(request: HttpRequest) -> HttpResponse | None:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return None


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _summary(rows: list[Any]) -> dict[str, Any]:
    """Period totals, rates weighted by their denominators (not averages of daily rates)."""

    def total(name: str) -> int:
        return sum(getattr(r, name) for r in rows)

    csat_n = total("csat_count")
    csat_sum = sum((r.csat_average or 0) * r.csat_count for r in rows)
    return {
        "conversations": total("conversations_started"),
        "messages": total("messages_customer") + total("messages_assistant"),
        "ai_resolution_rate": _ratio(
            total("conversations_ai_resolved"), total("conversations_resolved")
        ),
        "deflection_rate": _ratio(total("conversations_deflected"), total("conversations_active")),
        "handoff_rate": _ratio(total("conversations_handed_off"), total("conversations_active")),
        "unanswered_rate": _ratio(total("answers_unanswered"), total("answers")),
        "grounded_rate": _ratio(total("answers_grounded"), total("answers")),
        "fell_back_rate": _ratio(total("answers_fell_back"), total("answers")),
        "declined_rate": _ratio(total("answers_declined"), total("answers")),
        "thumbs_up": total("thumbs_up"),
        "thumbs_down": total("thumbs_down"),
        "thumbs_up_rate": _ratio(total("thumbs_up"), total("thumbs_up") + total("thumbs_down")),
        "csat_count": csat_n,
        "csat_average": _ratio(csat_sum, csat_n),
        "prompt_tokens": total("prompt_tokens"),
        "completion_tokens": total("completion_tokens"),
    }


def _charts(rows: list[Any], days: list[dt.date]) -> list[Any]:
    by_day = {r.day: r for r in rows}

    def values(name: str) -> list[float | None]:
        return [getattr(by_day[d], name) if d in by_day else None for d in days]

    return [
        charts.chart(
            title="Conversations per day",
            days=days,
            kind="bar",
            series=[
                charts.Series("started", "#3b82f6", values("conversations_started")),
                charts.Series("resolved", "#10b981", values("conversations_resolved")),
            ],
        ),
        charts.chart(
            title="Resolution, deflection, handoff and unanswered rates",
            days=days,
            y_max=1.0,
            y_format=charts.percent,
            series=[
                charts.Series("AI resolution", "#10b981", values("ai_resolution_rate")),
                charts.Series("deflection", "#3b82f6", values("deflection_rate")),
                charts.Series("handoff", "#f59e0b", values("handoff_rate")),
                charts.Series("unanswered", "#ef4444", values("unanswered_rate")),
            ],
        ),
        charts.chart(
            title="Answers: grounded, fell back to extractive, declined",
            days=days,
            y_max=1.0,
            y_format=charts.percent,
            series=[
                charts.Series("grounded", "#10b981", values("grounded_rate")),
                charts.Series("fell back", "#f59e0b", values("fell_back_rate")),
                charts.Series("declined", "#6b7280", values("declined_rate")),
            ],
        ),
        charts.chart(
            title="Latency, 95th percentile",
            days=days,
            y_format=charts.milliseconds,
            series=[
                charts.Series("retrieval", "#8b5cf6", values("retrieval_ms_p95")),
                charts.Series("first token", "#3b82f6", values("first_token_ms_p95")),
                charts.Series("whole answer", "#0f172a", values("total_ms_p95")),
            ],
        ),
        charts.chart(
            title="Feedback: share of thumbs up",
            days=days,
            y_max=1.0,
            y_format=charts.percent,
            series=[charts.Series("thumbs up", "#10b981", values("thumbs_up_rate"))],
        ),
        charts.chart(
            title="Tokens per day",
            days=days,
            kind="bar",
            series=[
                charts.Series("prompt", "#93c5fd", values("prompt_tokens")),
                charts.Series("completion", "#1d4ed8", values("completion_tokens")),
            ],
        ),
    ]


@never_cache
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    if (redirect := _login_required(request)) is not None:
        return redirect
    tenant, tenants = _viewer_tenant(request)
    try:
        period = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        period = DEFAULT_PERIOD
    if period not in PERIODS:
        period = DEFAULT_PERIOD
    today = timezone.localdate()
    days = [today - dt.timedelta(days=period - i) for i in range(period + 1)]
    rows = selectors.daily_stats(tenant=tenant, days=period, today=today)
    report = selectors.latest_drift_report(tenant=tenant)
    context = {
        **admin.site.each_context(request),
        "title": "Analytics",
        "subtitle": tenant.name,
        "tenant": tenant,
        "tenants": tenants,
        "period": period,
        "periods": PERIODS,
        "summary": {
            **_summary(rows),
            "sla_breaches": selectors.sla_breaches(tenant=tenant, since=days[0]),
        },
        "charts": _charts(rows, days),
        "has_rows": bool(rows),
        "report": report,
        "clusters": list(report.clusters.all()) if report else [],
        "alerts": selectors.drift_alerts(tenant=tenant),
        "insight_count": selectors.conversation_insights(tenant=tenant).count(),
    }
    return render(request, "analytics/dashboard.html", context)


@never_cache
@require_GET
def insights_csv_download(request: HttpRequest) -> HttpResponse:
    if (redirect := _login_required(request)) is not None:
        return redirect
    tenant, _ = _viewer_tenant(request)
    body = insights_csv(selectors.conversation_insights(tenant=tenant))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    filename = f"conversation-insights-{tenant.slug}-{timezone.localdate():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
