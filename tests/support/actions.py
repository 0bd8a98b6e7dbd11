"""Actions in the chat: the demo order service on loopback, its actions installed for a tenant,
and signed-in customers (apps/actions/tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.actions import services
from apps.actions.demo_orders import OrderService, action_definitions
from apps.tenants.services import end_user_token_sign


@pytest.fixture
def action_settings(settings: Any) -> Any:
    settings.CHAT_RATE_CONNECTS_PER_KEY = 0
    settings.CHAT_RATE_CONNECTS_PER_CLIENT = 0
    settings.CHAT_RATE_MESSAGES_PER_KEY = 0
    settings.CHAT_RATE_MESSAGES_PER_CLIENT = 0
    settings.CHAT_BURST_DEBOUNCE_MS = 0
    settings.ASSISTANT_MODE = "extractive"
    settings.ACTIONS_LLM_FILL = "off"
    settings.ACTIONS_ALLOW_PRIVATE_TARGETS = False
    return settings


@pytest.fixture
def order_service() -> Iterator[OrderService]:
    service = OrderService().start()
    try:
        yield service
    finally:
        service.stop()


def install_actions(world: Any, service: OrderService, *, allow_private: bool = True) -> None:
    tenant = world.tenant
    tenant.settings = {**tenant.settings, "actions_allow_private": allow_private}
    tenant.save(update_fields=["settings"])
    for definition in action_definitions(service.url):
        services.action_create(tenant=tenant, **definition)


@pytest.fixture
def actions_a(tenant_a: Any, order_service: OrderService, action_settings: Any) -> Any:
    install_actions(tenant_a, order_service)
    return tenant_a


def token_for(world: Any, sub: str, email: str) -> str:
    return end_user_token_sign(tenant=world.tenant, external_id=sub, email=email)


def alice(world: Any) -> str:
    return token_for(world, "cust_alice", "alice@example.com")
