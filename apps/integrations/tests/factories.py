"""Factories for integrations rows. Keys and subscriptions go through their services."""

from __future__ import annotations

import factory

from apps.events.models import Event, EventType
from apps.integrations import services
from apps.integrations.models import ApiKey, WebhookDelivery, WebhookSubscription
from apps.tenants.tests.factories import TenantFactory


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """`ApiKeyFactory(tenant=t, scopes=[...])`; the plaintext is on `.plaintext`."""

    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    scopes = factory.LazyFunction(lambda: ["admin"])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        api_key, plaintext = services.api_key_create(**kwargs)
        api_key.plaintext = plaintext
        return api_key


class WebhookSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookSubscription

    tenant = factory.SubFactory(TenantFactory)
    url = "https://hooks.example.com/supportai"
    event_types = factory.LazyFunction(lambda: ["*"])
    description = "test"
    secret = factory.LazyFunction(services.webhook_secret_new)


class EventFactory(factory.django.DjangoModelFactory):
    """An outbox row written directly (no dispatch is enqueued)."""

    class Meta:
        model = Event

    tenant = factory.SubFactory(TenantFactory)
    type = EventType.CONVERSATION_CREATED
    payload = factory.LazyFunction(lambda: {"conversation_id": "c-1"})


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    tenant = factory.SelfAttribute("subscription.tenant")
    subscription = factory.SubFactory(WebhookSubscriptionFactory)
    event = factory.SubFactory(EventFactory, tenant=factory.SelfAttribute("..tenant"))
