"""Writes for API keys, webhook subscriptions and webhook deliveries."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import random
import secrets
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import netguard
from apps.core.api.scopes import Scope
from apps.core.errors import ApplicationError
from apps.events.models import Event, EventType
from apps.events.services import event_record
from apps.integrations.models import (
    API_KEY_PREFIX,
    ApiKey,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.integrations.selectors import webhook_subscriptions_for_event
from apps.integrations.signing import signature_header
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

# Events about webhooks themselves never go out as webhooks: a dead endpoint would otherwise
# be sent the news of its own death, die again, and loop.
WEBHOOK_EXCLUDED_EVENT_TYPES = frozenset({EventType.WEBHOOK_DELIVERY_DEAD.value})
SUBSCRIBABLE_EVENT_TYPES = sorted({t.value for t in EventType} - WEBHOOK_EXCLUDED_EVENT_TYPES)
LAST_USED_RESOLUTION = timedelta(minutes=1)
RESPONSE_EXCERPT_CHARS = 2000
# Deliveries still to be attempted: new ones, and failed ones with a retry scheduled.
RETRYABLE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


# --- API keys -----------------------------------------------------------------------------------


def api_key_hash(plaintext: str) -> str:
    # The secret part has 256 bits of entropy, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _scopes_clean(scopes: Iterable[str]) -> list[str]:
    scopes = list(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown:
        raise ApplicationError(
            f"Unknown scope(s): {', '.join(unknown)}.",
            extra={"scopes": unknown, "allowed": Scope.values},
            code="invalid_scope",
        )
    if not scopes:
        raise ApplicationError("An API key needs at least one scope.", code="invalid_scope")
    return scopes


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    created_by: Any = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which is shown this once and never stored."""
    scopes = _scopes_clean(scopes)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("An API key needs a name.", extra={"name": name})
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("expires_at must be in the future.", code="invalid")
    api_key = ApiKey(
        tenant=tenant, name=name, scopes=scopes, created_by=created_by, expires_at=expires_at
    )
    return api_key, api_key_issue(api_key=api_key)


def api_key_issue(*, api_key: ApiKey) -> str:
    """Draw the secret for an unsaved key, store its hash, save; returns the plaintext."""
    api_key.scopes = _scopes_clean(api_key.scopes)
    for _ in range(5):
        prefix = API_KEY_PREFIX + secrets.token_hex(4)
        plaintext = f"{prefix}_{secrets.token_urlsafe(32)}"
        api_key.prefix = prefix
        api_key.secret_hash = api_key_hash(plaintext)
        try:
            with transaction.atomic():
                api_key.save()
        except IntegrityError:  # the 32-bit visible prefix collided; draw again
            continue
        return plaintext
    raise ApplicationError("Could not create a unique API key; try again.", code="conflict")


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey, now: datetime | None = None) -> None:
    """Record use, at most once a minute per key, so busy keys don't write on every request."""
    now = now or timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    stale_before = now - LAST_USED_RESOLUTION
    ApiKey.objects.for_tenant(api_key.tenant_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale_before), pk=api_key.pk
    ).update(last_used_at=now)
    api_key.last_used_at = now


# --- Webhook subscriptions ------------------------------------------------------------------------


def webhook_url_check(url: str, *, resolve: bool = True) -> None:
    """Refuse non-HTTP(S) URLs and, unless allowed, hosts that resolve to private addresses.

    A check made ahead of time (when the subscription is saved); the delivery itself connects
    only to addresses checked at connection time (`apps.core.netguard`).
    """
    parsed = urlparse(url or "")
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ApplicationError(
            "The webhook URL must be an http:// or https:// URL.", code="invalid"
        )
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return
    host = parsed.hostname
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    local_name = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    if not resolve and not literal and not local_name:
        return
    try:
        netguard.public_addresses(host, parsed.port or 443)
    except netguard.PrivateAddressError as exc:
        raise ApplicationError(
            "The webhook URL points at a private, loopback or reserved address.",
            extra={"url": url},
            code="invalid",
        ) from exc
    except httpx.ConnectError as exc:
        raise ApplicationError(
            f"The webhook host {host!r} does not resolve.", code="invalid"
        ) from exc


def _event_types_clean(event_types: Iterable[str]) -> list[str]:
    event_types = list(dict.fromkeys(event_types))
    if not event_types:
        raise ApplicationError('Name at least one event type, or "*" for all.', code="invalid")
    unknown = [t for t in event_types if t != "*" and t not in SUBSCRIBABLE_EVENT_TYPES]
    if unknown:
        raise ApplicationError(
            f"Unknown event type(s): {', '.join(unknown)}.",
            extra={"event_types": unknown, "allowed": ["*", *SUBSCRIBABLE_EVENT_TYPES]},
            code="invalid",
        )
    return ["*"] if "*" in event_types else event_types


def webhook_secret_new() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def webhook_subscription_create(
    *,
    tenant: Tenant,
    url: str,
    event_types: Iterable[str],
    description: str = "",
    is_active: bool = True,
    created_by: Any = None,
) -> WebhookSubscription:
    """A new subscription; its `secret` is readable on the returned row for showing once."""
    webhook_url_check(url)
    return WebhookSubscription.objects.create(
        tenant=tenant,
        url=url,
        event_types=_event_types_clean(event_types),
        description=description,
        is_active=is_active,
        secret=webhook_secret_new(),
        created_by=created_by,
    )


def webhook_subscription_update(
    *, subscription: WebhookSubscription, **changes: Any
) -> WebhookSubscription:
    allowed = {"url", "event_types", "description", "is_active"}
    for field, value in changes.items():
        if field not in allowed:
            raise ApplicationError(f"{field} cannot be changed.", code="invalid")
        if field == "url":
            webhook_url_check(value)
        if field == "event_types":
            value = _event_types_clean(value)
        setattr(subscription, field, value)
    subscription.save()
    return subscription


def webhook_subscription_rotate_secret(
    *, subscription: WebhookSubscription, grace: timedelta = timedelta(hours=24)
) -> WebhookSubscription:
    """A new secret; the old one keeps co-signing for `grace` so receivers can switch."""
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = timezone.now() + grace
    subscription.secret = webhook_secret_new()
    subscription.save()
    return subscription


# --- Webhook deliveries ---------------------------------------------------------------------------


def _enqueue_delivery(delivery_id: int, *, countdown: float = 0) -> None:
    # Celery pattern: tasks imports this module, so the task is imported when enqueued.
    from apps.integrations.tasks import deliver_webhook

    deliver_webhook.apply_async(args=[delivery_id], countdown=countdown)


def webhook_fanout(event: Event) -> None:
    """Events fan-out handler (required: a failure fails the dispatch, which is retried),
    registered by `IntegrationsConfig.ready()`."""
    deliveries = webhook_deliveries_create_for_event(event=event)
    logger.info("event %s (%s): %d webhook(s)", event.pk, event.type, len(deliveries))


def webhook_deliveries_create_for_event(*, event: Event) -> list[WebhookDelivery]:
    """One pending delivery per matching active subscription; each is sent after commit.

    Idempotent: a second call for the same event creates (and sends) nothing new.
    """
    if event.type in WEBHOOK_EXCLUDED_EVENT_TYPES:
        return []
    created = []
    now = timezone.now()
    for subscription in _matching_subscriptions(event):
        delivery, was_created = WebhookDelivery.objects.get_or_create(
            tenant_id=event.tenant_id,
            subscription=subscription,
            event=event,
            defaults={"next_attempt_at": now},
        )
        if was_created:
            created.append(delivery)
            transaction.on_commit(lambda pk=delivery.pk: _enqueue_delivery(pk))
    return created


def _matching_subscriptions(event: Event) -> list[WebhookSubscription]:
    return webhook_subscriptions_for_event(tenant=event.tenant, event_type=event.type)


def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, with a fresh round of retries (the attempt log is kept)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.for_tenant(delivery.tenant_id)
            .select_for_update()
            .get(pk=delivery.pk)
        )
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        transaction.on_commit(lambda: _enqueue_delivery(delivery.pk))
    return delivery


def webhook_payload(*, event: Event, delivery: WebhookDelivery) -> bytes:
    body = {
        "id": str(event.public_id),
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "tenant": event.tenant.slug,
        "delivery_id": str(delivery.public_id),
        "data": event.payload,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


def retry_delays() -> list[float]:
    return list(settings.WEBHOOK_RETRY_DELAYS)


def _retry_delay(attempts_made: int) -> float | None:
    """Seconds before the next try after `attempts_made` failures, or None when out of retries."""
    delays = retry_delays()
    if attempts_made > len(delays):
        return None
    base = delays[attempts_made - 1]
    # Jitter spreads the retries of many deliveries that failed together (an outage).
    return base * random.uniform(1.0, 1.25)  # noqa: S311 — not for security


def _claim(delivery_id: int, lease: timedelta) -> WebhookDelivery | None:
    """Take a pending, due delivery; move `next_attempt_at` past the attempt as a lease.

    Duplicate tasks (a retry plus a manual redelivery, a broker redelivery) find the lease in
    the future, or the delivery no longer pending, and do nothing.
    """
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.unscoped()
            .select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status__in=RETRYABLE_STATUSES)
            .first()
        )
        if delivery is None:
            return None
        if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(seconds=1):
            return None
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = now + lease
        delivery.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
    return (
        WebhookDelivery.objects.for_tenant(delivery.tenant_id)
        .select_related("subscription", "event", "event__tenant", "tenant")
        .get(pk=delivery.pk)
    )


def _send(delivery: WebhookDelivery) -> tuple[int | None, str, str, int]:
    """POST the signed event; (status code, error, response excerpt, duration in ms)."""
    subscription, event = delivery.subscription, delivery.event
    secrets = subscription.signing_secrets()
    if not secrets:
        # Sealed under a SECRET_KEY this server no longer has: nothing goes out unsigned.
        return None, "The signing secret cannot be read (SECRET_KEY changed): rotate it.", "", 0
    body = webhook_payload(event=event, delivery=delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "SupportAI-Webhooks/1.0",
        "X-SupportAI-Event": event.type,
        "X-SupportAI-Delivery": str(delivery.public_id),
        "X-SupportAI-Timestamp": str(timestamp),
        "X-SupportAI-Signature": signature_header(secrets, timestamp, body),
    }
    started = time.monotonic()
    try:
        # Checked again at send time: DNS may have changed since the subscription was saved.
        webhook_url_check(subscription.url)
        transport = netguard.guarded_transport(allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)
        with httpx.Client(
            transport=transport, timeout=settings.WEBHOOK_TIMEOUT, follow_redirects=False
        ) as client:
            response = client.post(subscription.url, content=body, headers=headers)
    except ApplicationError as exc:
        return None, exc.message, "", 0
    except httpx.HTTPError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        return None, f"{type(exc).__name__}: {exc}"[:1000], "", elapsed
    elapsed = int((time.monotonic() - started) * 1000)
    # What a private address answered is never kept or shown: with private targets allowed,
    # a subscription could otherwise read the server's internal pages back.
    public = bool(transport.backend.connected) and all(p for _, p in transport.backend.connected)
    excerpt = response.text[:RESPONSE_EXCERPT_CHARS] if public else ""
    error = "" if response.is_success else f"HTTP {response.status_code}"
    return response.status_code, error, excerpt, elapsed


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt of a delivery and schedule the next one, or give up (status dead)."""
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT + 60)
    delivery = _claim(delivery_id, lease)
    if delivery is None:
        return None
    status_code, error, excerpt, duration_ms = _send(delivery)
    succeeded = status_code is not None and 200 <= status_code < 300
    now = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.create(
            tenant_id=delivery.tenant_id,
            delivery=delivery,
            number=delivery.attempts,
            status_code=status_code,
            error=error,
            response_body_excerpt=excerpt,
            duration_ms=duration_ms,
            succeeded=succeeded,
        )
        delivery.last_status_code = status_code
        delivery.last_error = error
        delivery.response_body_excerpt = excerpt
        delivery.last_duration_ms = duration_ms
        if succeeded:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        else:
            delay = _retry_delay(delivery.attempts)
            if delay is None:
                delivery.status = DeliveryStatus.DEAD
                delivery.next_attempt_at = None
                _record_dead(delivery)
            else:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                transaction.on_commit(lambda: _enqueue_delivery(delivery.pk, countdown=delay))
        delivery.save()
    logger.info(
        "webhook delivery %s attempt %s: %s",
        delivery.public_id,
        delivery.attempts,
        "ok" if succeeded else error,
    )
    return delivery


def _record_dead(delivery: WebhookDelivery) -> None:
    event_record(
        tenant=delivery.tenant,
        type=EventType.WEBHOOK_DELIVERY_DEAD,
        payload={
            "delivery_id": str(delivery.public_id),
            "subscription_id": str(delivery.subscription.public_id),
            "url": delivery.subscription.url,
            "event_id": str(delivery.event.public_id),
            "event_type": delivery.event.type,
            "attempts": delivery.attempts,
            "last_error": delivery.last_error,
        },
    )


def webhook_deliveries_enqueue_due(*, stale_after: timedelta = timedelta(minutes=2)) -> int:
    """Re-enqueue pending deliveries whose task was lost (worker died, broker flushed)."""
    cutoff = timezone.now() - stale_after
    ids = list(
        WebhookDelivery.objects.unscoped()
        .filter(status__in=RETRYABLE_STATUSES, next_attempt_at__lt=cutoff)
        .values_list("pk", flat=True)[:1000]
    )
    for pk in ids:
        _enqueue_delivery(pk)
    return len(ids)
