from django.apps import AppConfig

# Registers the actions' series at start, so /metrics shows them before the first call (the
# module imports no models, so it may load with the app config).
from apps.actions import metrics  # noqa: F401


class ActionsConfig(AppConfig):
    name = "apps.actions"
    label = "actions"
    verbose_name = "Actions"
