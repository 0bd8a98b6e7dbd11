# Curated answers carry the access groups of the documents they were drawn from (issue #11).

from django.db import migrations, models


def restrict_existing(apps, schema_editor):
    """Give answers made before this field the groups of their documents, so none turns public."""
    CuratedAnswer = apps.get_model("workspace", "CuratedAnswer")
    Document = apps.get_model("knowledge", "Document")
    Message = apps.get_model("conversations", "Message")
    for answer in CuratedAnswer._base_manager.all().iterator():
        ids = {str(s.get("document_id")) for s in answer.sources or [] if isinstance(s, dict)}
        if answer.corrected_message_id:
            message = Message._base_manager.filter(pk=answer.corrected_message_id).first()
            for citation in (message.citations if message else None) or []:
                if isinstance(citation, dict):
                    ids.add(str(citation.get("document_id")))
        numeric = [int(i) for i in ids if i.isdigit()]
        required = []
        for groups in Document._base_manager.filter(
            tenant_id=answer.tenant_id, pk__in=numeric
        ).values_list("access_groups", flat=True):
            groups = sorted({str(g) for g in groups or [] if g and g != "*"})
            if groups and groups not in required:
                required.append(groups)
        if required:
            answer.access_groups = required
            answer.save(update_fields=["access_groups"])


class Migration(migrations.Migration):
    dependencies = [
        ("workspace", "0001_initial"),
        ("knowledge", "0001_initial"),
        ("conversations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="curatedanswer",
            name="access_groups",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(restrict_existing, migrations.RunPython.noop),
    ]
