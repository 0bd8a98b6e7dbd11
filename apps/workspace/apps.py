from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "apps.workspace"
    label = "workspace"
    verbose_name = "Agent workspace"
    default_auto_field = "django.db.models.BigAutoField"
