from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "apps.actions"
    label = "actions"
    verbose_name = "Actions"

    def ready(self) -> None:
        # Register the actions' series at start, so /metrics shows them before the first call.
        from apps.actions import metrics  # noqa: F401
