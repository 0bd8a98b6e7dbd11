"""The integrations API: API keys, webhook subscriptions and deliveries, events.

Every endpoint is checked for tenant isolation (keys and members of another tenant get 404
and see nothing), scopes (403), dead keys (401) and the one error body.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.events.models import Event, EventType
from apps.integrations.models import ApiKey, DeliveryStatus, WebhookSubscription
from apps.integrations.services import api_key_revoke
from apps.integrations.tests.factories import (
    ApiKeyFactory,
    EventFactory,
    WebhookDeliveryFactory,
    WebhookSubscriptionFactory,
)
from tests.support.api import assert_error, create_subscription

pytestmark = pytest.mark.usefixtures("fresh_cache", "webhooks_to_loopback")

API = "/api/v1"


@pytest.fixture
def objects_a(tenant_a):
    """One object of every kind in tenant A, for isolation checks."""
    tenant = tenant_a.tenant
    subscription = WebhookSubscriptionFactory(tenant=tenant)
    event = EventFactory(tenant=tenant)
    return {
        "api_key": ApiKeyFactory(tenant=tenant, name="A's key"),
        "subscription": subscription,
        "event": event,
        "delivery": WebhookDeliveryFactory(tenant=tenant, subscription=subscription, event=event),
    }


# (method, url template, object kind, required scope, request body)
DETAIL_ENDPOINTS = [
    ("get", "/api-keys/{id}/", "api_key", "admin", None),
    ("post", "/api-keys/{id}/revoke/", "api_key", "admin", None),
    ("delete", "/api-keys/{id}/", "api_key", "admin", None),
    ("get", "/webhooks/subscriptions/{id}/", "subscription", "webhooks:manage", None),
    (
        "patch",
        "/webhooks/subscriptions/{id}/",
        "subscription",
        "webhooks:manage",
        {"is_active": False},
    ),
    ("delete", "/webhooks/subscriptions/{id}/", "subscription", "webhooks:manage", None),
    (
        "post",
        "/webhooks/subscriptions/{id}/rotate-secret/",
        "subscription",
        "webhooks:manage",
        None,
    ),
    ("get", "/webhooks/deliveries/{id}/", "delivery", "webhooks:manage", None),
    ("post", "/webhooks/deliveries/{id}/redeliver/", "delivery", "webhooks:manage", None),
    ("get", "/events/{id}/", "event", "admin", None),
]
LIST_ENDPOINTS = [
    ("/api-keys/", "admin"),
    ("/webhooks/subscriptions/", "webhooks:manage"),
    ("/webhooks/deliveries/", "webhooks:manage"),
    ("/events/", "admin"),
]


def _call(client, method, template, obj, body=None, **extra):
    url = API + template.format(id=obj.public_id)
    return getattr(client, method)(url, body, format="json", **extra)


# --- Tenant isolation -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "template", "kind", "scope", "body"), DETAIL_ENDPOINTS)
def test_key_of_other_tenant_gets_404(
    tenant_a, tenant_b, objects_a, api_key_for, method, template, kind, scope, body
):
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    assert_error(_call(client_b, method, template, objects_a[kind], body), 404, "not_found")
    # Nothing was changed in tenant A.
    assert (
        ApiKey.objects.for_tenant(tenant_a.tenant).get(pk=objects_a["api_key"].pk).revoked_at
        is None
    )
    assert (
        WebhookSubscription.objects.for_tenant(tenant_a.tenant).filter(is_active=True).count() == 1
    )


@pytest.mark.parametrize(("template", "scope"), LIST_ENDPOINTS)
def test_key_of_other_tenant_lists_none_of_its_objects(
    tenant_a, tenant_b, objects_a, api_key_for, template, scope
):
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    response = client_b.get(API + template)
    assert response.status_code == 200, response.content
    ids = {item["id"] for item in response.json()["results"]}
    a_ids = {str(o.public_id) for o in objects_a.values()}
    assert not ids & a_ids


@pytest.mark.parametrize(("method", "template", "kind", "scope", "body"), DETAIL_ENDPOINTS)
def test_member_of_other_tenant_gets_404(
    tenant_a, tenant_b, objects_a, method, template, kind, scope, body
):
    client = APIClient()
    client.force_login(tenant_b.owner)
    response = _call(client, method, template, objects_a[kind], body, HTTP_X_TENANT="acme")
    assert_error(response, 404)
    response = _call(client, method, template, objects_a[kind], body, HTTP_X_TENANT="bluebird")
    assert_error(response, 404)


@pytest.mark.parametrize(("template", "scope"), LIST_ENDPOINTS)
def test_outsider_naming_the_tenant_gets_404(tenant_a, objects_a, template, scope):
    client = APIClient()
    client.force_login(tenant_a.outsider)
    assert_error(client.get(f"{API}{template}?tenant=acme"), 404)


@pytest.mark.parametrize(("template", "scope"), LIST_ENDPOINTS)
def test_admin_session_lists_its_tenant(tenant_a, objects_a, template, scope):
    client = APIClient()
    client.force_login(tenant_a.admin)
    response = client.get(f"{API}{template}?tenant=acme")
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) >= 1


def test_session_user_must_name_the_tenant(tenant_a):
    client = APIClient()
    client.force_login(tenant_a.admin)
    assert_error(client.get(f"{API}/events/"), 400, "tenant_required")


# --- Scopes and roles -----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "template", "kind", "scope", "body"), DETAIL_ENDPOINTS)
def test_key_without_the_scope_gets_403(
    tenant_a, objects_a, api_key_for, method, template, kind, scope, body
):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read", "contacts:write"])
    body_json = assert_error(_call(client, method, template, objects_a[kind], body), 403)
    assert body_json["error"]["code"] == "insufficient_scope"
    assert scope in body_json["error"]["message"]


@pytest.mark.parametrize(("template", "scope"), LIST_ENDPOINTS)
def test_key_with_the_scope_lists_and_without_gets_403(
    tenant_a, objects_a, api_key_for, template, scope
):
    assert api_key_for(tenant_a.tenant, scopes=[scope]).get(API + template).status_code == 200
    assert_error(api_key_for(tenant_a.tenant, scopes=["analytics:read"]).get(API + template), 403)


@pytest.mark.parametrize(("template", "scope"), LIST_ENDPOINTS)
def test_agent_session_gets_403_on_admin_endpoints(tenant_a, template, scope):
    client = APIClient()
    client.force_login(tenant_a.agent)
    assert_error(client.get(f"{API}{template}?tenant=acme"), 403, "permission_denied")


# --- Dead and missing credentials -------------------------------------------------------------


def test_revoked_key_gets_401(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    assert client.get(f"{API}/events/").status_code == 200
    api_key_revoke(api_key=client.api_key)
    body = assert_error(client.get(f"{API}/events/"), 401, "revoked_api_key")
    assert "revoked" in body["error"]["message"]


def test_expired_key_gets_401(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, expires_at=timezone.now() + timedelta(hours=1))
    ApiKey.objects.for_tenant(tenant_a.tenant).filter(pk=client.api_key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(client.get(f"{API}/api-keys/"), 401, "expired_api_key")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer sk_live_00000000_not-a-real-key"},
        {"HTTP_AUTHORIZATION": "Bearer garbage"},
        {"HTTP_X_API_KEY": "sk_live_deadbeef_nope"},
    ],
)
def test_missing_or_unknown_key_gets_401(db, headers):
    response = APIClient().get(f"{API}/events/", **headers)
    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_x_api_key_header_works_like_bearer(tenant_a, api_key_for):
    plaintext = api_key_for(tenant_a.tenant).plaintext
    assert APIClient().get(f"{API}/events/", HTTP_X_API_KEY=plaintext).status_code == 200


def test_key_of_an_inactive_tenant_gets_401(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    tenant_a.tenant.is_active = False
    tenant_a.tenant.save()
    assert_error(client.get(f"{API}/events/"), 401)


def test_key_use_is_recorded(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    client.get(f"{API}/events/")
    assert ApiKey.objects.for_tenant(tenant_a.tenant).get(pk=client.api_key.pk).last_used_at


# --- The one error body -----------------------------------------------------------------------


def test_unknown_urls_under_the_api_are_json_404(db):
    assert_error(APIClient().get(f"{API}/no-such-thing/"), 404, "not_found")
    assert_error(APIClient().post(f"{API}/conversations/1/x", {}), 404)


def test_wrong_method_is_405(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    assert_error(client.put(f"{API}/events/"), 405, "method_not_allowed")


def test_unsupported_media_type_is_415(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    response = client.post(
        f"{API}/webhooks/subscriptions/", data="url=x", content_type="text/plain"
    )
    assert_error(response, 415, "unsupported_media_type")


def test_malformed_json_is_400(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    response = client.post(
        f"{API}/webhooks/subscriptions/", data="{nope", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


def test_validation_errors_name_the_field(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    response = client.post(
        f"{API}/webhooks/subscriptions/",
        {"url": "ftp://x", "event_types": ["bogus"]},
        format="json",
    )
    body = assert_error(response, 400, "invalid")
    assert set(body["error"]["details"]) == {"url", "event_types"}


def test_not_found_for_malformed_ids(tenant_a, api_key_for):
    assert_error(api_key_for(tenant_a.tenant).get(f"{API}/events/123/"), 404)


# --- Rate limits ------------------------------------------------------------------------------


def test_over_the_limit_gets_429_with_retry_after(tenant_a, api_key_for, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    client = api_key_for(tenant_a.tenant)
    assert client.get(f"{API}/events/").status_code == 200
    assert client.get(f"{API}/events/").status_code == 200
    response = client.get(f"{API}/events/")
    assert_error(response, 429, "throttled")
    # A sliding window: the three requests (the refused one counts) still weigh on the next
    # minute, so the wait is the rest of this minute plus up to 40 s, until 1 + 3 * (1 - t/60)
    # fits in 2.
    assert 1 <= int(response["Retry-After"]) <= 100
    # The limit is per key: another key of the same tenant is not held back.
    assert api_key_for(tenant_a.tenant).get(f"{API}/events/").status_code == 200


def test_session_users_are_limited_too(tenant_a, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    client = APIClient()
    client.force_login(tenant_a.admin)
    assert client.get(f"{API}/events/?tenant=acme").status_code == 200
    assert_error(client.get(f"{API}/events/?tenant=acme"), 429)


# --- Webhook subscriptions ---------------------------------------------------------------------


def test_subscription_lifecycle(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["webhooks:manage"])
    created = create_subscription(client, "life-1").json()
    assert created["secret"].startswith("whsec_")
    sub_url = f"{API}/webhooks/subscriptions/{created['id']}/"
    fetched = client.get(sub_url).json()
    assert "secret" not in fetched
    patched = client.patch(sub_url, {"event_types": ["message.created"]}, format="json")
    assert patched.status_code == 200 and patched.json()["event_types"] == ["message.created"]
    rotated = client.post(f"{sub_url}rotate-secret/").json()
    assert rotated["secret"] != created["secret"]
    assert client.delete(sub_url).status_code == 204
    assert_error(client.get(sub_url), 404)


def test_private_targets_are_refused_in_production(tenant_a, api_key_for, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = create_subscription(api_key_for(tenant_a.tenant), "p-1", url="http://10.1.2.3/h")
    assert_error(response, 400)


def test_lists_page_with_cursors_newest_first(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant)
    subs = [WebhookSubscriptionFactory(tenant=tenant_a.tenant) for _ in range(3)]
    first = client.get(f"{API}/webhooks/subscriptions/?page_size=2").json()
    assert [s["id"] for s in first["results"]] == [str(s.public_id) for s in subs[::-1][:2]]
    second = client.get(first["next"]).json()
    assert [s["id"] for s in second["results"]] == [str(subs[0].public_id)]
    assert second["next"] is None


# --- Deliveries and events ----------------------------------------------------------------------


def test_deliveries_filter_and_show_their_attempts(tenant_a, objects_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["webhooks:manage"])
    dead = WebhookDeliveryFactory(
        tenant=tenant_a.tenant,
        subscription=objects_a["subscription"],
        event=EventFactory(tenant=tenant_a.tenant, type=EventType.MESSAGE_CREATED),
        status=DeliveryStatus.DEAD,
    )
    by_status = client.get(f"{API}/webhooks/deliveries/?status=dead").json()["results"]
    assert [d["id"] for d in by_status] == [str(dead.public_id)]
    by_type = client.get(f"{API}/webhooks/deliveries/?event_type=message.created").json()
    assert [d["id"] for d in by_type["results"]] == [str(dead.public_id)]
    detail = client.get(f"{API}/webhooks/deliveries/{dead.public_id}/").json()
    assert detail["log"] == [] and detail["event"]["type"] == "message.created"


def test_redeliver_resets_a_dead_delivery(tenant_a, objects_a, api_key_for, celery_eager):
    delivery = objects_a["delivery"]
    delivery.status, delivery.attempts = DeliveryStatus.DEAD, 3
    delivery.save()
    client = api_key_for(tenant_a.tenant, scopes=["webhooks:manage"])
    response = client.post(f"{API}/webhooks/deliveries/{delivery.public_id}/redeliver/")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending" and response.json()["attempts"] == 0


def test_events_list_filters_by_type(tenant_a, api_key_for):
    EventFactory(tenant=tenant_a.tenant, type=EventType.HANDOFF_REQUESTED)
    EventFactory(tenant=tenant_a.tenant, type=EventType.MESSAGE_CREATED)
    client = api_key_for(tenant_a.tenant)
    body = client.get(f"{API}/events/?type=handoff.requested").json()
    assert [e["type"] for e in body["results"]] == ["handoff.requested"]
    assert Event.objects.for_tenant(tenant_a.tenant).count() == 2


def test_schema_describes_the_endpoints_and_key_auth(tenant_a):
    client = APIClient()
    client.force_login(tenant_a.admin)
    response = client.get(f"{API}/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    for path in [
        "/api/v1/api-keys/",
        "/api/v1/api-keys/{public_id}/revoke/",
        "/api/v1/webhooks/subscriptions/{public_id}/rotate-secret/",
        "/api/v1/webhooks/deliveries/{public_id}/redeliver/",
        "/api/v1/events/",
    ]:
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert not any("{path}" in p for p in schema["paths"])
