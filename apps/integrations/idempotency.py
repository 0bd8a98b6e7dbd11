"""`Idempotency-Key` for every POST under /api/v1/.

A client that may retry a POST (timeouts, lost connections) sends a unique `Idempotency-Key`.
The first request with a key runs and, if it succeeds (2xx), its response is stored for 24 hours
under (tenant, key); a retry with the same key and the same body gets that response again, with
`Idempotent-Replayed: true`, and nothing runs twice. The same key with a different body, path
or sender is refused with 422; a retry while the first is still running gets 409. A request that
does not succeed stores nothing, so it can be retried with the same key.

A stored response may hold a secret shown only once (a new API key, a webhook secret), so it is
encrypted (Fernet) with a key derived from SECRET_KEY, the sender and the client's
Idempotency-Key, and the Idempotency-Key itself is stored only as an HMAC digest. A database
dump alone cannot be read; only the client that sends the same key again can get the response.

This is middleware, not a DRF class, so every API view gets it without opting in. It therefore
identifies the caller itself (the same API-key check DRF uses, or the session user and the tenant
they name); a request it cannot identify is passed on untouched and the view refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from rest_framework.authentication import CSRFCheck

from apps.core import permissions
from apps.core.api.auth import api_key_presented
from apps.core.api.errors import error_body
from apps.core.errors import NotFoundError
from apps.integrations.authentication import api_key_for_request
from apps.integrations.models import IdempotencyRecord
from apps.tenants.models import Tenant

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
TTL = timedelta(hours=24)
API_PREFIX = "/api/v1/"
MAX_KEY_LENGTH = 255


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code=code, message=message), status=status)


def key_digest(key: str) -> str:
    """What the database keeps of a client's Idempotency-Key (the lookup key)."""
    secret = settings.SECRET_KEY.encode()
    return hmac.new(secret, b"idempotency-key:" + key.encode(), hashlib.sha256).hexdigest()


def _body_cipher(*, key: str, principal: str) -> Fernet:
    """The cipher for a stored response: only a request with the same key and sender has it."""
    material = f"idempotency-body:{principal}:{key}".encode()
    derived = hmac.new(settings.SECRET_KEY.encode(), material, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def _csrf_ok(request: HttpRequest) -> bool:
    check = CSRFCheck(lambda _request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {}) is None


def _identify(request: HttpRequest) -> tuple[Tenant, str] | None:
    """(tenant, principal) the way the API will authenticate this request, or None."""
    if api_key_presented(request) is not None:
        api_key = api_key_for_request(request)
        return (api_key.tenant, f"key:{api_key.pk}") if api_key else None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not _csrf_ok(request):
        return None
    slug = request.GET.get("tenant") or request.headers.get("X-Tenant")
    if not slug:
        return None
    try:
        tenant = permissions.resolve_tenant(user=user, slug=slug)
    except NotFoundError:
        return None  # the API answers 404 for it, before any idempotency record
    return tenant, f"user:{user.pk}"


def _claim(
    *, tenant: Tenant, key: str, principal: str, path: str, body_hash: str
) -> tuple[IdempotencyRecord, bool]:
    """(record, True) if this request inserted the key; (existing record, False) otherwise."""
    for _ in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    tenant=tenant,
                    key=key,
                    principal=principal,
                    method="POST",
                    path=path,
                    body_hash=body_hash,
                    expires_at=now + TTL,
                )
            return record, True
        except IntegrityError:
            record = IdempotencyRecord.objects.for_tenant(tenant).filter(key=key).first()
            if record is None:
                continue  # deleted between our insert and our read (a failed first request)
            if record.expires_at <= now:
                IdempotencyRecord.objects.for_tenant(tenant).filter(
                    pk=record.pk, expires_at__lte=now
                ).delete()
                continue
            return record, False
    raise RuntimeError("could not claim an idempotency key")  # pragma: no cover


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            return _error(400, "invalid_idempotency_key", f"{HEADER} must be 1 to 255 characters.")
        identity = _identify(request)
        if identity is None:
            return self.get_response(request)
        tenant, principal = identity
        path = request.get_full_path()
        body_hash = hashlib.sha256(request.body).hexdigest()
        record, created = _claim(
            tenant=tenant, key=key_digest(key), principal=principal, path=path, body_hash=body_hash
        )
        cipher = _body_cipher(key=key, principal=principal)
        if not created:
            return self._replay(
                record, principal=principal, path=path, body_hash=body_hash, cipher=cipher
            )

        response = self.get_response(request)
        records = IdempotencyRecord.objects.for_tenant(tenant).filter(pk=record.pk)
        if response.streaming or not 200 <= response.status_code < 300:
            records.delete()
            return response
        records.update(
            status_code=response.status_code,
            content_type=response.get("Content-Type", ""),
            response_body=cipher.encrypt(response.content).decode("ascii"),
        )
        return response

    def _replay(
        self,
        record: IdempotencyRecord,
        *,
        principal: str,
        path: str,
        body_hash: str,
        cipher: Fernet,
    ) -> HttpResponse:
        if (record.principal, record.path, record.body_hash) != (principal, path, body_hash):
            return _error(
                422,
                "idempotency_key_reused",
                f"This {HEADER} was already used for a different request; use a new key.",
            )
        if record.status_code is None:
            return _error(
                409,
                "idempotency_key_in_progress",
                f"A request with this {HEADER} is still being processed; retry shortly.",
            )
        try:
            body = cipher.decrypt(record.response_body.encode("ascii"))
        except (InvalidToken, ValueError):
            # Stored before SECRET_KEY changed (or before bodies were encrypted): the request
            # ran once already, so running it again would do it twice.
            return _error(
                409,
                "idempotency_key_unreadable",
                f"The response stored for this {HEADER} can no longer be read; use a new key.",
            )
        response = HttpResponse(body, status=record.status_code, content_type=record.content_type)
        response[REPLAYED_HEADER] = "true"
        return response
