#!/usr/bin/env bash
# README command 1: set everything up and run SupportAI on embedded defaults.
# SQLite, in-process cache and channel layer, the embedded Qdrant engine, a Celery worker and
# beat on a filesystem broker, and the local LLM server. Ctrl-C stops every process it started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

export DEBUG="${DEBUG:-true}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
LLM_PORT="${LLM_PORT:-8001}"
export LLM_BASE_URL="${LLM_BASE_URL:-http://127.0.0.1:${LLM_PORT}/v1}"
export PUBLIC_URL="${PUBLIC_URL:-http://${HOST}:${PORT}}"
PY=.venv/bin/python
mkdir -p var/log

# Each server runs in a session of its own (setsid), so Ctrl-C reaches only this script, which
# then stops each one with SIGTERM: a Celery worker shuts its pool down itself (pool processes
# signalled directly can die holding the pool's queue lock and leave the worker hanging).
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "[run] stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$PY manage.py migrate --noinput >/dev/null
$PY manage.py seed_demo --public-url "$PUBLIC_URL"

if [ "$LLM_BASE_URL" = "http://127.0.0.1:${LLM_PORT}/v1" ]; then
  setsid $PY -m supportai.local_llm --port "$LLM_PORT" >var/log/llm.log 2>&1 & pids+=($!)
fi
setsid $PY -m workers worker >var/log/worker.log 2>&1 & pids+=($!)
setsid $PY -m workers beat >var/log/beat.log 2>&1 & pids+=($!)
setsid .venv/bin/uvicorn supportai.asgi:application --host "$HOST" --port "$PORT" --ws websockets-sansio \
  --log-level warning & pids+=($!)

for _ in $(seq 1 60); do
  curl -fs "http://${HOST}:${PORT}/healthz" >/dev/null 2>&1 && break; sleep 0.5
done
cat <<MSG

  SupportAI is running (logs in var/log/):
    Admin and agent sign-in   ${PUBLIC_URL}/admin/
    Chat widget demo page     ${PUBLIC_URL}/demo/
    API docs                  ${PUBLIC_URL}/api/v1/docs/
    Readiness                 ${PUBLIC_URL}/readyz
  Press Ctrl-C to stop everything.

MSG
wait -n "${pids[@]}" || true
