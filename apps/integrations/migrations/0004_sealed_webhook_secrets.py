"""Webhook signing secrets are sealed at rest (apps/core/sealing.py): widen the columns, then
seal the secrets stored in clear before."""

from django.db import migrations

import apps.core.sealing
from apps.core.sealing import SecretUnreadable, seal, unseal

PURPOSE = "webhooks:signing-secret"
SELECT = "SELECT id, secret, previous_secret FROM integrations_webhooksubscription"
UPDATE = (
    "UPDATE integrations_webhooksubscription SET secret = %s, previous_secret = %s WHERE id = %s"
)


def _sealed(value: str) -> str:
    try:
        unseal(value, purpose=PURPOSE)
        return value  # sealed already (the migration ran before and was rolled forward again)
    except SecretUnreadable:
        return seal(value, purpose=PURPOSE)


def seal_existing(apps, schema_editor):
    # Raw rows: the historical model's field would try to open the plaintext.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(SELECT)
        for pk, secret, previous in cursor.fetchall():
            cursor.execute(
                UPDATE,
                [_sealed(secret) if secret else "", _sealed(previous) if previous else "", pk],
            )


def open_existing(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(SELECT)
        for pk, secret, previous in cursor.fetchall():
            cursor.execute(
                UPDATE,
                [unseal(secret, purpose=PURPOSE), unseal(previous, purpose=PURPOSE), pk],
            )


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0003_one_tenant_manager"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhooksubscription",
            name="secret",
            field=apps.core.sealing.SealedTextField(editable=False, purpose=PURPOSE),
        ),
        migrations.AlterField(
            model_name="webhooksubscription",
            name="previous_secret",
            field=apps.core.sealing.SealedTextField(
                blank=True, default="", editable=False, purpose=PURPOSE
            ),
        ),
        migrations.RunPython(seal_existing, open_existing),
    ]
