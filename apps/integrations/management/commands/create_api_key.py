"""`manage.py create_api_key --tenant acme --name "CRM sync" --scopes admin` prints a new key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.core.api.scopes import Scope
from apps.core.errors import ApplicationError
from apps.integrations.services import api_key_create
from apps.tenants.selectors import tenant_get_by_slug


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--name", default="API key", help="What the key is for.")
        parser.add_argument(
            "--scopes",
            nargs="+",
            required=True,
            help=f"One or more of: {', '.join(Scope.values)} (comma- or space-separated).",
        )
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_get_by_slug(slug=options["tenant"])
        if tenant is None:
            raise CommandError(f"No active tenant with slug {options['tenant']!r}.")
        scopes = [s.strip() for item in options["scopes"] for s in item.split(",") if s.strip()]
        expires_at = None
        if options["expires_in_days"] is not None:
            expires_at = timezone.now() + timedelta(days=options["expires_in_days"])
        try:
            api_key, plaintext = api_key_create(
                tenant=tenant, name=options["name"], scopes=scopes, expires_at=expires_at
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(
            f"Created API key {api_key.prefix} ({', '.join(api_key.scopes)}) for {tenant.slug}. "
            "Copy it now; it will not be shown again:"
        )
        self.stdout.write(plaintext)
