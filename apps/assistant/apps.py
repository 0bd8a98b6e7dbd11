from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "apps.assistant"
    label = "assistant"
    verbose_name = "Assistant"

    def ready(self) -> None:
        # AppConfig.ready: the hooks import models, which cannot load before the app registry.
        from apps.assistant import hooks

        hooks.connect()
