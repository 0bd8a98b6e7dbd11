"""Fixtures shared by every test: two tenants, each with an owner, an agent and an outsider.

The outsider is a staff user with no membership in that tenant (they belong to nothing), so
every isolation test can ask "what does someone who is not of this tenant get?".

The fixtures for real processes, receivers and API clients (`api_key_for`, `http_receiver`,
`celery_worker_process`, ...) come from the plugin `tests/support/fixtures.py`, registered here
so that app tests (`apps/<app>/tests/`) and cross-cutting tests (`tests/`) share them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Shared fixtures: the actions ones (order service, installed actions), a loopback SMTP server.
pytest_plugins = ["tests.support.fixtures", "tests.support.actions", "tests.support.smtp"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """The tenant fixtures create eight users; the production hasher takes ~0.4 s for each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Any:
    """Every test gets channel layers made for its own event loop.

    Channels caches one layer per process. A Redis layer remembers the loop that is receiving
    on it, and a consumer abandoned by an earlier test's (closed) loop leaves it counting a
    receiver that will never return: the next test's consumer then dies with "Two event loops
    are trying to receive() on one channel layer at once!" and its answer never arrives.
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@dataclass
class TenantWorld:
    tenant: Any
    owner: Any
    admin: Any
    agent: Any
    outsider: Any
    widget_key: Any


def _world(name: str, slug: str) -> TenantWorld:
    from apps.tenants.models import Role, WidgetKey
    from apps.tenants.services import membership_set, tenant_create
    from apps.tenants.tests.factories import UserFactory

    tenant = tenant_create(name=name, slug=slug, allowed_origins=[f"https://{slug}.example.com"])
    owner, admin, agent = (UserFactory(username=f"{slug}-{r}") for r in ("owner", "admin", "agent"))
    membership_set(tenant=tenant, user=owner, role=Role.OWNER)
    membership_set(tenant=tenant, user=admin, role=Role.ADMIN)
    membership_set(tenant=tenant, user=agent, role=Role.AGENT)
    outsider = UserFactory(username=f"{slug}-outsider")
    return TenantWorld(
        tenant=tenant,
        owner=owner,
        admin=admin,
        agent=agent,
        outsider=outsider,
        widget_key=WidgetKey.objects.for_tenant(tenant).get(),
    )


@pytest.fixture
def tenant_a(db) -> TenantWorld:
    return _world("Acme Anvils", "acme")


@pytest.fixture
def tenant_b(db) -> TenantWorld:
    return _world("Bluebird Bikes", "bluebird")
