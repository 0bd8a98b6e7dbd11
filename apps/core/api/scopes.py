"""Scopes: what an API key may do, and the role a signed-in member needs for the same.

Data only (imported by `apps.integrations.models`): `apps.core.api.permissions.HasScope` checks
them.
"""

from __future__ import annotations

from django.db import models

from apps.tenants.models import Role


class Scope(models.TextChoices):
    """What an API key may do; a signed-in member needs the role in SCOPE_MIN_ROLE instead."""

    CONVERSATIONS_READ = "conversations:read"
    CONVERSATIONS_WRITE = "conversations:write"
    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    KNOWLEDGE_READ = "knowledge:read"
    KNOWLEDGE_WRITE = "knowledge:write"
    ANALYTICS_READ = "analytics:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    ADMIN = "admin", "admin (implies every scope)"


# The role a signed-in member needs for what an API key needs a scope for.
SCOPE_MIN_ROLE: dict[str, Role] = {
    Scope.CONVERSATIONS_READ: Role.AGENT,
    Scope.CONVERSATIONS_WRITE: Role.AGENT,
    Scope.CONTACTS_READ: Role.AGENT,
    # Contacts come from the CRM and the widget's signed tokens; agents read the contacts of
    # the conversations they work, and only admins change them by hand.
    Scope.CONTACTS_WRITE: Role.ADMIN,
    Scope.KNOWLEDGE_READ: Role.AGENT,
    Scope.KNOWLEDGE_WRITE: Role.ADMIN,
    Scope.ANALYTICS_READ: Role.ADMIN,
    Scope.WEBHOOKS_MANAGE: Role.ADMIN,
    Scope.ADMIN: Role.ADMIN,
}
