from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "apps.analytics"
    label = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Infrastructure hooks only: Prometheus counters for dispatched events and Celery task
        # timings, and log context for tasks. No business flow runs through these.
        from apps.analytics import hooks

        hooks.connect()
