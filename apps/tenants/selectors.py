"""Reads for tenants and widget keys."""

from __future__ import annotations

from typing import Any

from apps.tenants.models import Tenant, WidgetKey, WidgetLanguage, text_lines


def widget_key_resolve(*, key: str) -> WidgetKey | None:
    """The active widget key with its active tenant, or None. Keys are globally unique."""
    if not key or len(key) > 64:
        return None
    return (
        WidgetKey.objects.unscoped()
        .select_related("tenant")
        .filter(key=key, is_active=True, tenant__is_active=True)
        .first()
    )


def tenant_get_by_slug(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug, is_active=True).first()


def widget_settings(*, widget_key: WidgetKey) -> dict[str, Any]:
    """How the widget of this key looks, greets and speaks, as its first frame carries it.

    Built from the key and its tenant (loaded with the key: no query), so it is always as the
    admin last saved it; the widget keeps a copy per key to draw the launcher before it connects.
    """
    languages = [code for code in WidgetLanguage.values if code in (widget_key.languages or [])]
    languages = languages or list(WidgetLanguage.values)
    default = widget_key.tenant.default_language
    return {
        "accent_color": widget_key.accent_color,
        "accent_text_color": widget_key.accent_text_color,
        "launcher_position": widget_key.launcher_position,
        "launcher_label": widget_key.launcher_label,
        "assistant_name": widget_key.assistant_name,
        "avatar_url": widget_key.avatar_url or None,
        "greeting": widget_key.greeting,
        "suggested_questions": text_lines(widget_key.suggested_questions),
        "languages": languages,
        "default_language": default if default in languages else languages[0],
        "hidden_paths": text_lines(widget_key.hidden_paths),
    }
