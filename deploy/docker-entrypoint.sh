#!/bin/sh
# SupportAI container entry point. One image, one role per container:
#   web                  ASGI server (HTTP + websockets) on :8000
#   worker [QUEUE,...]   Celery worker; all queues when none given (default,ingest,events,batch)
#   beat                 Celery beat (run exactly one)
#   migrate              apply database migrations, then exit
#   wait-for-migrations  block until the database schema is current (Kubernetes init container)
#   manage ARGS...       any Django management command
# Anything else is executed as given (e.g. `sh` for debugging).
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

# Prometheus multiprocess mode (web and worker roles): every process writes its values to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics adds them up, so a restarted container must start from an
# empty folder or it would count a dead run's values again. Only prometheus_client's *.db files are
# removed, whatever the folder is. Other roles (one-shot commands, `manage` run beside a live
# server) record nothing there.
prepare_metrics_dir() {
  if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete
  fi
}

case "$role" in
  web|worker) prepare_metrics_dir ;;
  *) unset PROMETHEUS_MULTIPROC_DIR ;;
esac

case "$role" in
  web)
    # Prometheus scrapes each Kubernetes pod at its IP, which is then the Host header that Django
    # checks: allow it (POD_IP comes from the downward API; IPv6 hosts are bracketed).
    if [ -n "${POD_IP:-}" ] && [ -n "${ALLOWED_HOSTS:-}" ]; then
      case "$POD_IP" in
        *:*) ALLOWED_HOSTS="$ALLOWED_HOSTS,[$POD_IP]" ;;
        *) ALLOWED_HOSTS="$ALLOWED_HOSTS,$POD_IP" ;;
      esac
      export ALLOWED_HOSTS
    fi
    # X-Forwarded-For is read by the application (TRUSTED_PROXIES, supportai/edge.py), not by
    # uvicorn, whose "*" would believe whatever a client claims.
    # uvicorn's own process manager (uvicorn.workers for gunicorn is deprecated). One process per
    # CPU is a good start; on Kubernetes prefer 1-2 per pod and scale pods with the HPA.
    exec uvicorn supportai.asgi:application \
      --host 0.0.0.0 --port 8000 \
      --workers "${WEB_CONCURRENCY:-2}" \
      --no-proxy-headers \
      --ws websockets-sansio --lifespan off \
      --timeout-graceful-shutdown 25 --no-server-header \
      "$@"
    ;;
  worker)
    # Concurrency comes from CELERY_CONCURRENCY (read by workers/__main__.py).
    exec python -m workers worker "$@"
    ;;
  beat)
    exec python -m workers beat
    ;;
  migrate)
    exec python manage.py migrate --noinput "$@"
    ;;
  wait-for-migrations)
    deadline=$(( $(date +%s) + ${MIGRATION_WAIT_SECONDS:-600} ))
    until python manage.py migrate --check --noinput >/dev/null 2>&1; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "wait-for-migrations: schema still not current; is the migrate job running?" >&2
        exit 1
      fi
      echo "wait-for-migrations: waiting for the database schema to be current" >&2
      sleep 5
    done
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
