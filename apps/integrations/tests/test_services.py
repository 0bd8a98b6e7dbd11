import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from apps.core.errors import ApplicationError
from apps.integrations import services
from apps.integrations.authentication import api_key_check
from apps.integrations.models import ApiKey
from apps.integrations.tests.factories import ApiKeyFactory, WebhookSubscriptionFactory


def test_api_key_is_stored_as_a_hash_and_shown_once(tenant_a):
    api_key, plaintext = services.api_key_create(
        tenant=tenant_a.tenant, name="CRM", scopes=["contacts:read"], created_by=tenant_a.admin
    )
    assert plaintext.startswith(api_key.prefix + "_")
    assert api_key.prefix.startswith("sk_live_") and len(api_key.prefix) == 16
    stored = ApiKey.objects.for_tenant(tenant_a.tenant).get(pk=api_key.pk)
    assert stored.secret_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in str(stored.__dict__)
    assert api_key_check(plaintext) == stored


@pytest.mark.parametrize("scopes", [[], ["contacts:read", "root"]])
def test_api_key_needs_known_scopes(tenant_a, scopes):
    with pytest.raises(ApplicationError):
        services.api_key_create(tenant=tenant_a.tenant, name="x", scopes=scopes)


def test_admin_scope_implies_every_scope(tenant_a):
    key = ApiKeyFactory(tenant=tenant_a.tenant, scopes=["admin"])
    assert key.has_scope("knowledge:write") and key.has_scope("webhooks:manage")
    narrow = ApiKeyFactory(tenant=tenant_a.tenant, scopes=["contacts:read"])
    assert narrow.has_scope("contacts:read") and not narrow.has_scope("contacts:write")


def test_a_wrong_secret_with_a_real_prefix_is_refused(tenant_a):
    key = ApiKeyFactory(tenant=tenant_a.tenant)
    with pytest.raises(AuthenticationFailed, match="Invalid"):
        api_key_check(key.prefix + "_" + "x" * 43)


def test_revoked_and_expired_keys_are_refused(tenant_a):
    revoked = ApiKeyFactory(tenant=tenant_a.tenant)
    services.api_key_revoke(api_key=revoked)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        api_key_check(revoked.plaintext)
    expired = ApiKeyFactory(tenant=tenant_a.tenant, expires_at=timezone.now() + timedelta(days=1))
    ApiKey.objects.for_tenant(tenant_a.tenant).filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(AuthenticationFailed, match="expired"):
        api_key_check(expired.plaintext)


def test_last_used_is_written_at_most_once_a_minute(tenant_a, django_assert_num_queries):
    key = ApiKeyFactory(tenant=tenant_a.tenant)
    now = timezone.now()
    services.api_key_touch(api_key=key, now=now)
    with django_assert_num_queries(0):
        services.api_key_touch(api_key=key, now=now + timedelta(seconds=30))
    services.api_key_touch(api_key=key, now=now + timedelta(seconds=61))
    key.refresh_from_db()
    assert key.last_used_at == now + timedelta(seconds=61)


def test_production_refuses_private_webhook_targets(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    for url in [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/hook",
    ]:
        with pytest.raises(ApplicationError):
            services.webhook_url_check(url)
    services.webhook_url_check("https://93.184.216.34/hook")


def test_loopback_targets_are_allowed_when_configured(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    services.webhook_url_check("http://127.0.0.1:8000/hook")


def test_subscription_validates_event_types(tenant_a, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with pytest.raises(ApplicationError, match="Unknown event type"):
        services.webhook_subscription_create(
            tenant=tenant_a.tenant, url="http://127.0.0.1/h", event_types=["nope"]
        )
    with pytest.raises(ApplicationError, match="Unknown event type"):
        # Never deliverable: a dead endpoint would be told of its own death, forever.
        services.webhook_subscription_create(
            tenant=tenant_a.tenant, url="http://127.0.0.1/h", event_types=["webhook.delivery_dead"]
        )
    sub = services.webhook_subscription_create(
        tenant=tenant_a.tenant, url="http://127.0.0.1/h", event_types=["*", "message.created"]
    )
    assert sub.event_types == ["*"] and sub.secret.startswith("whsec_")


def test_rotation_keeps_the_old_secret_signing_for_a_while(tenant_a):
    sub = WebhookSubscriptionFactory(tenant=tenant_a.tenant)
    old = sub.secret
    services.webhook_subscription_rotate_secret(subscription=sub)
    assert sub.secret != old
    assert sub.signing_secrets() == [sub.secret, old]
    assert sub.signing_secrets(now=timezone.now() + timedelta(hours=25)) == [sub.secret]


def test_retry_schedule_follows_the_setting_with_jitter(settings):
    settings.WEBHOOK_RETRY_DELAYS = [10.0, 100.0]
    first = services._retry_delay(1)
    second = services._retry_delay(2)
    assert 10.0 <= first <= 12.5
    assert 100.0 <= second <= 125.0
    assert services._retry_delay(3) is None
