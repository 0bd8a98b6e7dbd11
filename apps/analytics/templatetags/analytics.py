"""Formatting filters for the analytics dashboard."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def pct(value: Any) -> str:
    """0.8333 -> "83.3%"; None (no denominator) -> a dash."""
    if value is None:
        return "\N{EN DASH}"
    return f"{float(value) * 100:.1f}%"


@register.filter
def isodate(value: Any) -> str:
    """An ISO timestamp (as stored in JSON) as a local date, or "" when absent."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return ""
    return f"{timezone.localtime(moment):%Y-%m-%d}" if timezone.is_aware(moment) else str(value)
