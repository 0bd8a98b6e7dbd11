"""Messages get their number within the conversation (`seq`), the id the widget sees."""

from django.db import migrations, models

# Number the existing messages of each conversation in id order (PostgreSQL and SQLite >= 3.33).
BACKFILL = """
UPDATE conversations_message SET seq = numbered.n
FROM (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY id) AS n
    FROM conversations_message
) AS numbered
WHERE conversations_message.id = numbered.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0004_conversation_reply_email"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="seq",
            field=models.PositiveIntegerField(editable=False, null=True),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="message",
            name="seq",
            field=models.PositiveIntegerField(editable=False),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                fields=("conversation", "seq"), name="message_unique_seq"
            ),
        ),
    ]
