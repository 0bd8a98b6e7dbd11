#!/usr/bin/env bash
# README command 2: set up the same environment, make sure PostgreSQL and Redis run, then run
# ruff, the import-layer contract, the widget's unit tests and the whole pytest suite against
# the real services.
# Extra arguments go to pytest (e.g. `./scripts/test.sh apps/tenants -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
./scripts/services.sh

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export DEBUG=false
export SECRET_KEY="${SECRET_KEY:-test-secret-key-that-is-long-enough-for-production-mode}"
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/supportai}"
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
export CACHE_KEY_PREFIX="supportai-test"
export DATA_DIR="${TEST_DATA_DIR:-$(pwd)/var/test}"
export SECURE_COOKIES=false
# The suite runs on the embedded engine users run by default (qdrant-edge), set here so that an
# engine chosen in the caller's environment cannot leak into the worker and web subprocesses;
# the vector-store contract suite covers qdrant-client's local mode as well.
export QDRANT_LOCAL_ENGINE=edge
mkdir -p "$DATA_DIR"

echo "[test] ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] import layers"
# The layer contract in pyproject.toml ([tool.importlinter]; docs/architecture.md, "Layers").
.venv/bin/lint-imports
echo "[test] widget unit tests"
(cd frontend && npm test --silent && npm run size --silent)
echo "[test] pytest"
set +e
.venv/bin/pytest "$@"
status=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure of the suite, not a pass.
exit $status
