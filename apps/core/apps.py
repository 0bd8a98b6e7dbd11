from django.apps import AppConfig

from apps.core.observability import hooks


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # AppConfig.ready: checks registers the deployment checks; health reads models.
        from apps.core import checks, health  # noqa: F401

        # /readyz counts the workers' start-up grace from here (apps.core.health).
        health.mark_process_started()
        # Prometheus timings of Celery tasks and the task id in the log context.
        hooks.connect()
