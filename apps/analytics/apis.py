"""REST endpoint: a tenant's analytics over a date range, from the daily roll-ups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.analytics.models import DailyTenantStats
from apps.core.api.permissions import HasScope
from apps.core.api.scopes import Scope
from apps.core.api.viewsets import TenantViewSetMixin

MAX_DAYS = 366
DEFAULT_DAYS = 30
COUNTS = [
    "conversations_started",
    "conversations_active",
    "messages_customer",
    "messages_assistant",
    "messages_agent",
    "messages_system",
    "conversations_resolved",
    "conversations_ai_resolved",
    "conversations_handed_off",
    "conversations_deflected",
    "answers",
    "answers_unanswered",
    "answers_grounded",
    "answers_fell_back",
    "answers_declined",
    "thumbs_up",
    "thumbs_down",
    "csat_count",
    "prompt_tokens",
    "completion_tokens",
]


class SummaryQuerySerializer(serializers.Serializer):
    """`?from=&to=` (ISO dates). `from` is a Python keyword, hence `get_fields`."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": serializers.DateField(required=False),
            "to": serializers.DateField(required=False),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        to = attrs.get("to") or timezone.localdate()
        since = attrs.get("from") or to - dt.timedelta(days=DEFAULT_DAYS - 1)
        if since > to:
            raise serializers.ValidationError({"from": ["`from` must not be after `to`."]})
        if (to - since).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"from": [f"At most {MAX_DAYS} days at a time."]})
        return {"from": since, "to": to}


class DailyStatsSerializer(serializers.ModelSerializer):
    class Meta:
        model = DailyTenantStats
        exclude = ["id", "tenant", "created_at", "updated_at"]


class TotalsSerializer(serializers.Serializer):
    conversations_started = serializers.IntegerField()
    conversations_active = serializers.IntegerField()
    messages_customer = serializers.IntegerField()
    messages_assistant = serializers.IntegerField()
    messages_agent = serializers.IntegerField()
    messages_system = serializers.IntegerField()
    conversations_resolved = serializers.IntegerField()
    conversations_ai_resolved = serializers.IntegerField()
    conversations_handed_off = serializers.IntegerField()
    conversations_deflected = serializers.IntegerField()
    answers = serializers.IntegerField()
    answers_unanswered = serializers.IntegerField()
    answers_grounded = serializers.IntegerField()
    answers_fell_back = serializers.IntegerField()
    answers_declined = serializers.IntegerField()
    thumbs_up = serializers.IntegerField()
    thumbs_down = serializers.IntegerField()
    csat_count = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    ai_resolution_rate = serializers.FloatField(allow_null=True)
    deflection_rate = serializers.FloatField(allow_null=True)
    handoff_rate = serializers.FloatField(allow_null=True)
    unanswered_rate = serializers.FloatField(allow_null=True)
    grounded_rate = serializers.FloatField(allow_null=True)
    fell_back_rate = serializers.FloatField(allow_null=True)
    declined_rate = serializers.FloatField(allow_null=True)
    thumbs_up_rate = serializers.FloatField(allow_null=True)
    csat_average = serializers.FloatField(allow_null=True)


class SummarySerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    days_with_data = serializers.IntegerField()
    totals = TotalsSerializer()
    daily = DailyStatsSerializer(many=True)


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def summarize(rows: list[DailyTenantStats]) -> dict[str, Any]:
    """Counts summed over the days; rates recomputed from the sums (weighted by their base)."""
    totals: dict[str, Any] = {name: sum(getattr(r, name) for r in rows) for name in COUNTS}
    handed_off_active = sum((r.handoff_rate or 0) * r.conversations_active for r in rows)
    csat_sum = sum((r.csat_average or 0) * r.csat_count for r in rows)
    totals.update(
        ai_resolution_rate=_ratio(
            totals["conversations_ai_resolved"], totals["conversations_resolved"]
        ),
        deflection_rate=_ratio(totals["conversations_deflected"], totals["conversations_active"]),
        handoff_rate=_ratio(handed_off_active, totals["conversations_active"]),
        unanswered_rate=_ratio(totals["answers_unanswered"], totals["answers"]),
        grounded_rate=_ratio(totals["answers_grounded"], totals["answers"]),
        fell_back_rate=_ratio(totals["answers_fell_back"], totals["answers"]),
        declined_rate=_ratio(totals["answers_declined"], totals["answers"]),
        thumbs_up_rate=_ratio(totals["thumbs_up"], totals["thumbs_up"] + totals["thumbs_down"]),
        csat_average=_ratio(csat_sum, totals["csat_count"]),
    )
    return totals


class AnalyticsSummaryView(TenantViewSetMixin, GenericAPIView):
    serializer_class = SummarySerializer
    permission_classes = [IsAuthenticated, HasScope]
    required_scopes = {"get": [Scope.ANALYTICS_READ]}
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(
        summary="Analytics for a date range",
        tags=["analytics"],
        parameters=[
            OpenApiParameter("from", dt.date, description="First day (default: 30 days ago)."),
            OpenApiParameter("to", dt.date, description="Last day, inclusive (default: today)."),
        ],
        responses=SummarySerializer,
        description=(
            "Sums of the daily roll-ups (docs/analytics.md defines every number) and the rows "
            "themselves; rates are recomputed from the summed counts. Days not yet rolled up "
            f"are absent. At most {MAX_DAYS} days."
        ),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        query = SummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since, to = query.validated_data["from"], query.validated_data["to"]
        rows = list(
            DailyTenantStats.objects.for_tenant(self.tenant)
            .filter(day__gte=since, day__lte=to)
            .order_by("day")
        )
        body = {
            "date_from": since,
            "date_to": to,
            "days_with_data": len(rows),
            "totals": summarize(rows),
            "daily": rows,
        }
        return Response(SummarySerializer(body).data)


urlpatterns = [
    path("analytics/summary/", AnalyticsSummaryView.as_view(), name="analytics-summary"),
]
