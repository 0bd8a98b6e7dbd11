# Stored idempotent responses used to keep API keys and webhook secrets in clear, under the
# client's raw Idempotency-Key (issue #11). They are now encrypted and looked up by a digest,
# so the old rows can never be replayed again: delete them rather than keep secrets for a day.

from django.db import migrations


def purge(apps, schema_editor):
    apps.get_model("integrations", "IdempotencyRecord")._base_manager.all().delete()


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial")]

    operations = [migrations.RunPython(purge, migrations.RunPython.noop)]
