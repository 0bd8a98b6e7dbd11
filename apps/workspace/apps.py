from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "apps.workspace"
    label = "workspace"
    verbose_name = "Agent workspace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # AppConfig.ready: the hooks import models, which cannot load before the app registry.
        from apps.workspace import hooks

        hooks.connect()
