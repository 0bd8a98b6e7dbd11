"""The end-user token secret is sealed at rest (apps/core/sealing.py): tokens still sign and
verify, a database dump does not reveal the key, and a secret that cannot be opened (SECRET_KEY
changed without a fallback) makes every token invalid instead of signing with an empty key."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from django.db import connection

from apps.core.errors import ApplicationError
from apps.tenants.models import Tenant
from apps.tenants.services import end_user_token_sign, end_user_token_verify

pytestmark = pytest.mark.django_db


def _stored(tenant: Tenant) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT end_user_secret FROM tenants_tenant WHERE id = %s", [tenant.pk])
        return cursor.fetchone()[0]


def test_the_end_user_secret_is_sealed_and_tokens_still_verify(tenant_a):
    tenant = Tenant.objects.get(pk=tenant_a.tenant.pk)
    assert len(tenant.end_user_secret) >= 40
    stored = _stored(tenant)
    assert tenant.end_user_secret not in stored and stored.startswith("gAAAAA")
    token = end_user_token_sign(tenant=tenant, external_id="cust_1")
    assert end_user_token_verify(tenant=tenant, token=token)["sub"] == "cust_1"


def test_an_unreadable_secret_makes_every_token_invalid(tenant_a, settings):
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789abcdef"
    tenant = Tenant.objects.get(pk=tenant_a.tenant.pk)
    assert tenant.end_user_secret == ""
    # What an attacker would send if the empty string were the key.
    body = base64.urlsafe_b64encode(b'{"exp":9999999999,"groups":[],"sub":"x"}').rstrip(b"=")
    signature = hmac.new(b"", body, hashlib.sha256).digest()
    forged = f"{body.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    with pytest.raises(ApplicationError):
        end_user_token_verify(tenant=tenant, token=forged)
