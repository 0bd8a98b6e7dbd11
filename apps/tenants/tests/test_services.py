import pytest

from apps.core.errors import ApplicationError
from apps.tenants.models import Membership, Role
from apps.tenants.services import (
    end_user_token_sign,
    end_user_token_verify,
    membership_invite,
    membership_remove,
    tenant_create,
)


def test_tenant_create_validates_origins(db):
    with pytest.raises(ApplicationError) as err:
        tenant_create(name="X", slug="x", allowed_origins=["not a url"])
    assert "allowed_origins" in err.value.extra


def test_tenant_create_gives_a_widget_key(db):
    tenant = tenant_create(name="X", slug="x", allowed_origins=["https://x.example.com/"])
    assert tenant.allowed_origins == ["https://x.example.com"]
    assert tenant.origin_allowed("https://x.example.com")
    assert not tenant.origin_allowed("https://evil.example.com")


def test_invite_creates_account_and_staff_membership(tenant_a):
    membership = membership_invite(
        tenant=tenant_a.tenant,
        email="New.Person@Example.com",
        role=Role.AGENT,
        password="s3cret-pw!",
    )
    assert membership.user.email == "new.person@example.com"
    assert membership.user.is_staff
    assert membership.user.check_password("s3cret-pw!")


def test_last_owner_cannot_be_removed(tenant_a):
    with pytest.raises(ApplicationError, match="at least one owner"):
        membership_remove(tenant=tenant_a.tenant, user=tenant_a.owner)
    membership_remove(tenant=tenant_a.tenant, user=tenant_a.agent)
    assert not Membership.objects.for_tenant(tenant_a.tenant).filter(user=tenant_a.agent).exists()


def test_end_user_token_round_trip(tenant_a):
    token = end_user_token_sign(tenant=tenant_a.tenant, external_id="crm-42", groups=["vip"])
    claims = end_user_token_verify(tenant=tenant_a.tenant, token=token)
    assert claims["sub"] == "crm-42"
    assert claims["groups"] == ["vip"]


def test_end_user_token_of_other_tenant_is_rejected(tenant_a, tenant_b):
    token = end_user_token_sign(tenant=tenant_a.tenant, external_id="crm-42")
    with pytest.raises(ApplicationError, match="not valid"):
        end_user_token_verify(tenant=tenant_b.tenant, token=token)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "e30.AAAA"])
def test_malformed_end_user_token_is_rejected(tenant_a, token):
    with pytest.raises(ApplicationError):
        end_user_token_verify(tenant=tenant_a.tenant, token=token)


def test_expired_end_user_token_is_rejected(tenant_a):
    token = end_user_token_sign(tenant=tenant_a.tenant, external_id="crm-42", ttl=-5)
    with pytest.raises(ApplicationError, match="expired"):
        end_user_token_verify(tenant=tenant_a.tenant, token=token)
