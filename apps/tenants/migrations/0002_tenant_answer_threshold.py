import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="answer_threshold",
            field=models.FloatField(
                blank=True,
                help_text="Answerability (0-1) below which the assistant does not answer. Empty: "
                "the calibrated default.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AddField(
            model_name="tenant",
            name="unanswerable_action",
            field=models.CharField(
                choices=[
                    ("decline", "Say it does not know"),
                    ("offer", "Say it does not know and offer a person"),
                    ("handoff", "Hand the conversation to a person"),
                ],
                default="offer",
                help_text="What the assistant does when the knowledge does not answer a question.",
                max_length=16,
            ),
        ),
    ]
