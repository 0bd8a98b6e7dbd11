"""Create (or reuse) the demo tenant with an owner, an agent and sample help-center knowledge."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from apps.actions import services as action_services
from apps.actions.demo_orders import DEMO_CUSTOMERS, SAMPLE_ORDERS, action_definitions
from apps.actions.models import Action
from apps.knowledge.models import Source
from apps.knowledge.services import source_create
from apps.tenants.models import Role, Tenant, WidgetKey
from apps.tenants.services import membership_invite, tenant_create

# The demo's data stays with the tenants app; the command lives here, in the top layer that
# writes, because it seeds through every app (tenant, people, knowledge, actions).
DEMO_DIR = Path(__file__).resolve().parents[3] / "tenants" / "demo"
DEMO_SLUG = "northwind"


def _origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


class Command(BaseCommand):
    help = "Seed the demo tenant (idempotent): people, widget key and sample knowledge."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--public-url", default=settings.PUBLIC_URL)

    def handle(self, *args, public_url: str, **options) -> None:
        credentials_file = settings.DATA_DIR / "demo-credentials.json"
        credentials = json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
        origins = sorted({_origin(public_url), "http://127.0.0.1:8000", "http://localhost:8000"})
        with transaction.atomic():
            tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
            if tenant is None:
                tenant = tenant_create(
                    name="Northwind Bikes", slug=DEMO_SLUG, allowed_origins=origins
                )
            elif not set(origins) <= set(tenant.allowed_origins):
                tenant.allowed_origins = sorted(set(tenant.allowed_origins) | set(origins))
                tenant.save(update_fields=["allowed_origins"])
            for role, email, name in (
                (Role.OWNER, "owner@northwind-bikes.example", "Olivia Owner"),
                (Role.AGENT, "agent@northwind-bikes.example", "Alex Agent"),
            ):
                if email not in credentials:
                    credentials[email] = secrets.token_urlsafe(9)
                    membership = membership_invite(tenant=tenant, email=email, role=role, name=name)
                    membership.user.set_password(credentials[email])
                    membership.user.save(update_fields=["password"])
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        credentials_file.write_text(json.dumps(credentials, indent=2))
        credentials_file.chmod(0o600)

        sources = self._seed_knowledge(tenant)
        key = WidgetKey.objects.for_tenant(tenant).filter(is_active=True).first()
        self.stdout.write(self.style.SUCCESS(f"Demo tenant: {tenant.name} ({tenant.slug})"))
        for email, password in credentials.items():
            self.stdout.write(f"  sign in: {email} / {password}")
        self.stdout.write(f"  widget key: {key.key if key else '-'}")
        self.stdout.write(f"  knowledge sources: {sources}")
        self._seed_actions(tenant, public_url)

    def _seed_actions(self, tenant: Tenant, public_url: str) -> None:
        """The order-status and cancel-order actions against the demo order system that the
        app serves at /demo/orders/ (docs/actions.md), and the sample orders to ask about."""
        base_url = public_url.rstrip("/") + "/demo/orders"
        # The demo order system runs on this machine: let this tenant's actions reach it.
        if tenant.settings.get("actions_allow_private") is not True:
            tenant.settings = {**tenant.settings, "actions_allow_private": True}
            tenant.save(update_fields=["settings"])
        for definition in action_definitions(base_url):
            existing = Action.objects.for_tenant(tenant).filter(name=definition["name"]).first()
            if existing is None:
                action_services.action_create(tenant=tenant, **definition)
            elif existing.url_template != definition["url_template"]:
                action_services.action_update(
                    action=existing, url_template=definition["url_template"]
                )
        self.stdout.write(
            "  actions: order_status, cancel_order (demo order system at "
            f"{base_url}/); sample orders:"
        )
        for number, order in SAMPLE_ORDERS.items():
            owner = next(
                (sub for sub, c in DEMO_CUSTOMERS.items() if c["email"] == order["email"]), "?"
            )
            self.stdout.write(f"    {number}  {order['status']:<10}  customer {owner}")
        self.stdout.write("  ask about them signed in: /demo/?customer=cust_alice (or cust_bob)")

    def _seed_knowledge(self, tenant: Tenant) -> int:
        """Add each sample article as a text source once; the worker indexes it."""
        existing = set(Source.objects.for_tenant(tenant).values_list("name", flat=True))
        for article in sorted((DEMO_DIR / "knowledge").glob("*.md")):
            name = article.stem.replace("-", " ").replace("_", " ").title()
            if name in existing:
                continue
            source_create(tenant=tenant, kind="text", name=name, text=article.read_text())
        return Source.objects.for_tenant(tenant).count()
