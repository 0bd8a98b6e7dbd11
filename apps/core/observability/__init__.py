"""Observability below every app: Prometheus metrics and the Celery hooks that feed them.

- `metrics`: the metrics and the small functions the rest of the code calls (chat path, tasks);
- `exporter`: the Celery worker's own `/metrics` endpoint;
- `hooks`: Celery's task signals (run time, failures, the task id in the log context, the
  worker exporter), connected once from `CoreConfig.ready()`.

Any app may import this package; it imports no app. Log configuration is `supportai/logging.py`,
which settings load before any app.
"""
