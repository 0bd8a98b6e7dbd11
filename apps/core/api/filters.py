"""Query filters every API shares (django-filter)."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC: PostgreSQL refuses offsets beyond ±15:59, and
    a date near year 1 or 9999 may not survive the conversion (400, not a 500)."""

    def to_python(self, value: object) -> dt.datetime | None:
        result = super().to_python(value)
        if result is None:
            return None
        try:
            return result.astimezone(dt.UTC)
        except (OverflowError, ValueError) as exc:
            raise forms.ValidationError("Enter a date-time in a representable range.") from exc


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
