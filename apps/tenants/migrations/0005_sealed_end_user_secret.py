"""End-user token secrets are sealed at rest (apps/core/sealing.py): widen the column, then seal
the secrets stored in clear before."""

from django.db import migrations

import apps.core.sealing
import apps.tenants.models
from apps.core.sealing import SecretUnreadable, seal, unseal

PURPOSE = "tenants:end-user-secret"
SELECT = "SELECT id, end_user_secret FROM tenants_tenant"
UPDATE = "UPDATE tenants_tenant SET end_user_secret = %s WHERE id = %s"


def _sealed(value: str) -> str:
    try:
        unseal(value, purpose=PURPOSE)
        return value  # sealed already
    except SecretUnreadable:
        return seal(value, purpose=PURPOSE)


def seal_existing(apps, schema_editor):
    # Raw rows: the historical model's field would try to open the plaintext.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(SELECT)
        for pk, secret in cursor.fetchall():
            cursor.execute(UPDATE, [_sealed(secret), pk])


def open_existing(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(SELECT)
        for pk, secret in cursor.fetchall():
            cursor.execute(UPDATE, [unseal(secret, purpose=PURPOSE), pk])


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_one_tenant_manager"),
    ]

    operations = [
        migrations.AlterField(
            model_name="tenant",
            name="end_user_secret",
            field=apps.core.sealing.SealedTextField(
                default=apps.tenants.models._end_user_secret, editable=False, purpose=PURPOSE
            ),
        ),
        migrations.RunPython(seal_existing, open_existing),
    ]
