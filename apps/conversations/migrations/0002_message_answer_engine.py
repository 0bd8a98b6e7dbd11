from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="strategy",
            field=models.CharField(
                blank=True,
                choices=[
                    ("extractive", "Extractive (sentences from the sources)"),
                    ("generative", "Generative (the model, unchecked)"),
                    ("grounded", "Grounded (the model, checked sentence by sentence)"),
                ],
                default="",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="answerability",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="grounding",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="message",
            name="decision",
            field=models.CharField(
                blank=True,
                choices=[
                    ("answer", "Answer"),
                    ("clarify", "Ask to clarify"),
                    ("handoff", "Hand off"),
                    ("extractive", "Excerpts (no language model)"),
                    ("decline", "Declined (not answerable from the knowledge)"),
                ],
                default="",
                max_length=16,
            ),
        ),
    ]
