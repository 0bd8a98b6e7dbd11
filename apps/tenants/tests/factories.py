import factory

from apps.accounts.models import User
from apps.tenants.models import Membership, Role, Tenant, WidgetKey
from apps.tenants.services import tenant_setup


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    display_name = factory.Faker("name")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw-correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Company {n}")
    slug = factory.Sequence(lambda n: f"company-{n}")
    allowed_origins = factory.LazyAttribute(lambda t: [f"https://{t.slug}.example.com"])

    @factory.post_generation
    def _setup(obj, create, extracted, **kwargs):
        # What other apps set up for a new tenant, as tenant_create does (its default inbox).
        if create:
            tenant_setup(tenant=obj)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.AGENT


class WidgetKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WidgetKey

    tenant = factory.SubFactory(TenantFactory)
    name = "Website"
