from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from apps.core import checks  # noqa: F401  (registers the deployment checks)
        from apps.core.health import mark_process_started

        # /readyz counts the workers' start-up grace from here (apps.core.health).
        mark_process_started()
