"""Bad settings stop start-up with ImproperlyConfigured naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-secret-key-that-is-long-enough",
    "DATABASE_URL": "postgres://postgres:postgres@127.0.0.1:5432/supportai",
}


def load_settings(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "SECRET_KEY", "DEBUG"}}
    env.update(GOOD, DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="supportai.settings")
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('ok')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_good_settings_load(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    "variable,value,message",
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("SECRET_KEY", "", "SECRET_KEY is required when DEBUG is false"),
        ("SECRET_KEY", "short", "SECRET_KEY must be at least 32 characters"),
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL must point at PostgreSQL"),
        ("DATABASE_URL", "nonsense", "DATABASE_URL"),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL='http://127.0.0.1:6379' is not a URL"),
        ("CELERY_BROKER_URL", "sqs://queue", "CELERY_BROKER_URL='sqs://queue' must be"),
        ("QDRANT_URL", "qdrant:6333", "QDRANT_URL='qdrant:6333' is not a URL"),
        ("LLM_BASE_URL", "ftp://llm", "LLM_BASE_URL='ftp://llm' is not a URL"),
        ("LLM_TIMEOUT", "soon", "LLM_TIMEOUT='soon' is not a number"),
        ("LLM_MAX_TOKENS", "0", "LLM_MAX_TOKENS='0' must be at least 1"),
        ("EMBEDDING_MODEL_PATH", "/nonexistent/model", "EMBEDDING_MODEL_PATH="),
        ("READINESS_REQUIRED", "database,gpu", "READINESS_REQUIRED entry 'gpu'"),
        ("CSRF_TRUSTED_ORIGINS", "example.com", "CSRF_TRUSTED_ORIGINS entry 'example.com'"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud' must be one of"),
        ("SECRET_KEY_FILE", "/nonexistent/secret", "SECRET_KEY_FILE='/nonexistent/secret'"),
    ],
)
def test_bad_value_fails_naming_the_variable(tmp_path, variable, value, message):
    result = load_settings(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr, result.stderr[-1500:]


def test_secret_key_file_is_read(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("a-production-secret-key-from-a-mounted-file\n")
    result = load_settings(tmp_path, SECRET_KEY="", SECRET_KEY_FILE=str(secret))
    assert result.returncode == 0, result.stderr


def test_development_generates_and_keeps_a_secret_key(tmp_path):
    first = load_settings(tmp_path, DEBUG="true", SECRET_KEY="")
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "dev-secret-key").read_text()
    assert len(key) >= 50
    load_settings(tmp_path, DEBUG="true", SECRET_KEY="")
    assert (tmp_path / "dev-secret-key").read_text() == key
