"""Every tenant has its default inbox from now on (created with the tenant): give one to the
tenants created before, which got it on first use."""

from django.db import migrations

DEFAULT_INBOX_NAME = "General"  # apps.workspace.selectors.DEFAULT_INBOX_NAME when written


def create_default_inboxes(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    Inbox = apps.get_model("workspace", "Inbox")
    # Historical models have plain managers (whatever they are named in the migration state):
    # no tenant scope applies here.
    inboxes = Inbox._default_manager
    with_default = inboxes.filter(is_default=True).values("tenant_id")
    for tenant in Tenant._default_manager.exclude(pk__in=with_default):
        inboxes.create(tenant=tenant, name=DEFAULT_INBOX_NAME, is_default=True)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0003_widget_customisation"),
        ("workspace", "0007_rule_handoff_conditions"),
    ]

    operations = [migrations.RunPython(create_default_inboxes, migrations.RunPython.noop)]
