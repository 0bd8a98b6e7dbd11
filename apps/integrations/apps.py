from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # AppConfig.ready: the hooks import models, which cannot load before the app registry.
        from apps.integrations import hooks

        hooks.connect()
