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

# The demo's settings go into .env, which settings.py reads (real environment variables win),
# so that `manage.py createsuperuser` and the other commands work afterwards with no extra
# environment. Rewritten on every run; a .env of your own (without this first line) is kept.
ENV_MARK="# Written by scripts/run.sh for the demo; delete this line to keep your own edits."
if [ ! -e .env ] || [ "$(head -n 1 .env)" = "$ENV_MARK" ]; then
  data_dir=$(realpath -m "${DATA_DIR:-var}")
  # Keep the key of an earlier run (sessions survive restarts), else make one.
  demo_key=""
  if [ -f .env ]; then demo_key=$(sed -n 's/^SECRET_KEY=//p' .env | head -n 1); fi
  if [ -z "$demo_key" ] && [ -s "$data_dir/dev-secret-key" ]; then
    demo_key=$(cat "$data_dir/dev-secret-key")
  fi
  if [ -z "$demo_key" ]; then
    demo_key=$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')
  fi
  (
    umask 077
    cat >.env <<ENV
$ENV_MARK
DEBUG=$DEBUG
SECRET_KEY=$demo_key
DATA_DIR='$data_dir'
PUBLIC_URL=$PUBLIC_URL
LLM_BASE_URL=$LLM_BASE_URL
HF_HUB_OFFLINE=1
TRANSFORMERS_OFFLINE=1
ENV
  )
fi

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
  # llama-cpp-python's server lets HOST, PORT, API_KEY, MODEL and its other settings in the
  # environment override its command line (PORT=9000 would make it take the web port), so it
  # gets a clean environment: what finding programs and files needs, and the LLM_* variables.
  llm_env=()
  for name in PATH HOME USER LANG LC_ALL LC_CTYPE TMPDIR LD_LIBRARY_PATH $(compgen -e | grep '^LLM_' || true); do
    if [ -n "${!name+set}" ]; then llm_env+=("$name=${!name}"); fi
  done
  setsid env -i "${llm_env[@]}" $PY -m supportai.local_llm --port "$LLM_PORT" >var/log/llm.log 2>&1 &
  pids+=($!)
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
