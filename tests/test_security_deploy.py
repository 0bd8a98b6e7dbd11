"""Production settings pass Django's deployment checks (issue #11).

`manage.py check --deploy --fail-level WARNING` with the settings a production deployment
uses (DEBUG off, a long secret, Redis, HTTPS cookies by default) reports nothing, and the
HTTPS redirect it asks for leaves the probes that reach the container directly alone.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_with_production_settings_reports_nothing(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"))
    }
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="support.example.com",
        CSRF_TRUSTED_ORIGINS="https://support.example.com",
        PUBLIC_URL="https://support.example.com",
        REDIS_URL="redis://127.0.0.1:6379/0",  # named, never connected to by the checks
        DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="supportai.settings",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "System check identified no issues" in output, output[-4000:]


def test_check_deploy_warns_when_rate_limits_would_be_per_process(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "REDIS_URL"))
    }
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="support.example.com",
        DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="supportai.settings",
        REDIS_URL="",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "supportai.W001" in output and "REDIS_URL is empty" in output, output[-4000:]


def test_https_redirect_spares_the_probes(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    redirected = client.get("/admin/login/")
    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://")
    assert client.get("/admin/login/", secure=True).status_code == 200
