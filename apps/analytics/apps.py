from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "apps.analytics"
    label = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # AppConfig.ready: the events fan-out handler (Prometheus counts of dispatched events,
        # debounced roll-ups); importing it at module level would load models too early.
        from apps.analytics import hooks

        hooks.connect()
