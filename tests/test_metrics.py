"""/metrics: token protection, the custom metrics after a real chat, Celery task metrics, the
worker exporter and multiprocess aggregation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from apps.analytics.tasks import rollup_day
from apps.conversations.models import Message, MessageRole
from apps.core.observability import metrics
from apps.core.observability.exporter import start_exporter
from tests.support.chat import open_chat, receive_answer
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401
from tests.support.llm import llm_server, llm_settings  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-token-for-tests-0123456789"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


# --- Protection -------------------------------------------------------------------------------


def test_metrics_are_off_without_a_token_setting(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_metrics_without_a_token_are_refused_with_401(client, metrics_token):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"supportai_" not in response.content
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_metrics_with_a_wrong_token_are_forbidden(client, metrics_token):
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert response.status_code == 403
    assert b"supportai_" not in response.content


@pytest.mark.django_db
def test_metrics_with_the_token_expose_django_and_supportai_metrics(client, metrics_token):
    client.get("/healthz")
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "django_http_requests_total_by_method_total" in body
    for name in (
        "supportai_retrieval_seconds",
        "supportai_first_token_seconds",
        "supportai_answer_seconds",
        "supportai_answer_tokens_per_second",
        "supportai_llm_errors_total",
        "supportai_websocket_connections",
        "supportai_celery_task_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in body, name
    # Bounded labels: only fixed sets, never a conversation, message or tenant id.
    label_names = {
        pair.split("=", 1)[0]
        for line in body.splitlines()
        if line.startswith("supportai_") and "{" in line
        for pair in line[line.index("{") + 1 : line.index("}")].split(",")
        if pair
    }
    # (`status` is an action call's status: CallStatus, or "other".)
    allowed = {"decision", "kind", "type", "task", "state", "status", "outcome", "le"}
    assert label_names <= allowed, label_names


# --- After a real chat ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
@pytest.mark.usefixtures("knowledge_store", "llm_settings")
async def test_metrics_expose_answer_histograms_after_a_real_chat(tenant_a, settings, client):
    settings.METRICS_TOKEN = TOKEN
    settings.CHAT_RATE_CONNECTS_PER_CLIENT = 0
    settings.CHAT_RATE_MESSAGES_PER_CLIENT = 0
    await sync_to_async(ingest_text)(
        tenant=tenant_a.tenant,
        title="Shipping",
        text="# Shipping\n\nWe ship to the EU and the UK. Delivery takes 3 to 5 business days.",
    )
    before = {
        "retrieval": value("supportai_retrieval_seconds_count"),
        "first_token": value("supportai_first_token_seconds_count"),
        "answer": value("supportai_answer_seconds_count", decision="answer"),
        "tokens": value("supportai_completion_tokens_total"),
    }

    sockets = value("supportai_websocket_connections")
    communicator, _ = await open_chat(tenant_a)
    assert value("supportai_websocket_connections") == sockets + 1
    await communicator.send_json_to(
        {"type": "message", "client_id": "m1", "text": "How long does delivery take?"}
    )
    _, done = await receive_answer(communicator, timeout=120)
    await communicator.disconnect()
    assert value("supportai_websocket_connections") == sockets

    stored = await sync_to_async(
        lambda: Message.objects.for_tenant(tenant_a.tenant).get(seq=done["message"]["id"])
    )()
    assert stored.role == MessageRole.ASSISTANT and stored.decision == "answer"
    # Nothing here calls the metrics: the chat path itself observed the stored answer.

    response = await sync_to_async(client.get)("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    body = response.content.decode()
    assert "supportai_retrieval_seconds_bucket" in body
    assert value("supportai_retrieval_seconds_count") == before["retrieval"] + 1
    assert value("supportai_first_token_seconds_count") == before["first_token"] + 1
    assert value("supportai_answer_seconds_count", decision="answer") == before["answer"] + 1
    assert value("supportai_completion_tokens_total") == before["tokens"] + stored.completion_tokens
    assert value("supportai_answer_seconds_sum", decision="answer") > 0


# --- The functions the chat path calls --------------------------------------------------------


def test_llm_errors_and_websocket_gauge_are_counted_with_bounded_labels():
    timeouts = value("supportai_llm_errors_total", kind="timeout")
    other = value("supportai_llm_errors_total", kind="other")
    metrics.llm_error("timeout")
    metrics.llm_error("conversation-1234")  # anything unknown is "other", never a new series
    assert value("supportai_llm_errors_total", kind="timeout") == timeouts + 1
    assert value("supportai_llm_errors_total", kind="other") == other + 1
    assert value("supportai_llm_errors_total", kind="conversation-1234") == 0.0

    import httpx as _httpx
    import openai

    request = _httpx.Request("POST", "http://llm/v1/chat/completions")
    assert metrics.classify_llm_error(openai.APITimeoutError(request=request)) == "timeout"
    assert metrics.classify_llm_error(openai.APIConnectionError(request=request)) == "connection"
    assert metrics.classify_llm_error(ValueError("not json")) == "bad_response"

    open_now = value("supportai_websocket_connections")
    metrics.ws_connected()
    metrics.ws_connected()
    metrics.ws_disconnected()
    assert value("supportai_websocket_connections") == open_now + 1
    metrics.ws_disconnected()


def test_observe_answer_records_tokens_per_second():
    count = value("supportai_answer_tokens_per_second_count")
    total = value("supportai_answer_tokens_per_second_sum")
    metrics.observe_answer(
        retrieval_ms=20, first_token_ms=500, total_ms=2500, completion_tokens=40, decision="answer"
    )
    assert value("supportai_answer_tokens_per_second_count") == count + 1
    assert value("supportai_answer_tokens_per_second_sum") == pytest.approx(total + 20.0)


# --- Celery tasks -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_celery_task_durations_and_failures_are_recorded(tenant_a):
    name = "apps.analytics.tasks.rollup_day"
    ok = value("supportai_celery_task_seconds_count", task=name, state="success")
    failures = value("supportai_celery_task_failures_total", task=name)

    rollup_day.apply(kwargs={"tenant_id": tenant_a.tenant.pk, "day": "2026-03-10"})
    assert value("supportai_celery_task_seconds_count", task=name, state="success") == ok + 1

    result = rollup_day.apply(kwargs={"tenant_id": tenant_a.tenant.pk, "day": "not-a-date"})
    assert result.failed()
    assert value("supportai_celery_task_failures_total", task=name) == failures + 1
    assert value("supportai_celery_task_seconds_count", task=name, state="failure") >= 1


# --- Worker exporter and multiprocess mode ----------------------------------------------------


def test_worker_exporter_serves_metrics_behind_the_same_token():
    server = start_exporter(port=0, addr="127.0.0.1", token=TOKEN)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 403
        response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert response.status_code == 200
        assert "supportai_celery_task_seconds" in response.text
    finally:
        server.shutdown()
        server.server_close()


def test_worker_exporter_stays_off_without_a_token():
    assert start_exporter(port=0, addr="127.0.0.1", token="") is None


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """Two processes (like prefork children) count; a third one's registry sees the sum."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    record = (
        "from apps.core.observability import metrics\n"
        "metrics.llm_error('timeout')\n"
        "metrics.observe_answer(retrieval_ms=50, first_token_ms=None, total_ms=None,"
        " completion_tokens=None, decision='answer')\n"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", record], cwd=ROOT, env=env, check=True, timeout=60)
    collect = (
        "import json\n"
        "from apps.core.observability import metrics\n"
        "registry = metrics.registry()\n"
        "print(json.dumps({\n"
        " 'errors': registry.get_sample_value('supportai_llm_errors_total', {'kind': 'timeout'}),\n"
        " 'retrievals': registry.get_sample_value('supportai_retrieval_seconds_count'),\n"
        "}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", collect],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"errors": 2.0, "retrievals": 2.0}


@pytest.mark.integration
def test_a_real_prefork_worker_exports_its_task_metrics(transactional_db, tenant_a, tmp_path):
    """A Celery worker (prefork: the task runs in a child process) with WORKER_METRICS_PORT and
    PROMETHEUS_MULTIPROC_DIR serves the child's task timings on its own /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    from supportai.celery import app
    from tests.support.fixtures import _free_port, _stop, subprocess_env, wait_until

    broker = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/10"
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    port = _free_port()
    env = subprocess_env(
        CELERY_BROKER_URL=broker,
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        WORKER_METRICS_PORT=str(port),
        WORKER_METRICS_ADDR="127.0.0.1",
        METRICS_TOKEN=TOKEN,
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "supportai",
                "worker",
                "-Q",
                "batch",
                "--pool=prefork",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
                "-n",
                f"metrics-{port}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/metrics"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def scrape() -> float | None:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited; its log:\n{log_path.read_text()[-3000:]}")
        try:
            response = httpx.get(url, headers=headers, timeout=2)
        except httpx.HTTPError:
            return None
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if (
                    sample.name == "supportai_celery_task_seconds_count"
                    and sample.labels.get("task") == "apps.analytics.tasks.rollup_day"
                    and sample.labels.get("state") == "success"
                ):
                    return sample.value
        return None

    try:
        wait_until(
            lambda: _answers(url),
            timeout=60,
            message=f"the worker exporter did not start; log:\n{log_path.read_text()[-3000:]}",
        )
        # Published on a connection of its own: this process's broker pool stays as it is.
        with app.connection_for_write(broker) as connection:
            rollup_day.apply_async(
                kwargs={"tenant_id": tenant_a.tenant.pk, "day": "2026-03-10"},
                connection=connection,
            )
        count = wait_until(
            scrape, timeout=60, message=f"no task metrics; log:\n{log_path.read_text()[-3000:]}"
        )
        assert count >= 1
    finally:
        _stop(worker, "celery worker")


def _answers(url: str) -> bool:
    """The exporter is up and refuses a scrape without the token."""
    try:
        return httpx.get(url, timeout=2).status_code == 401
    except httpx.HTTPError:
        return False
