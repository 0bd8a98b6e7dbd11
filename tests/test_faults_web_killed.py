"""The web process SIGKILLed while an answer streams (issue #11).

Real processes: the local LLM server (SmolLM2 on llama.cpp) streaming the answer, uvicorn
serving the widget socket on a private PostgreSQL cluster, and a widget-like client. The
uvicorn process is killed with SIGKILL after the first tokens reach the customer; a new one is
started on the same port, and the client reconnects to the conversation with the highest id it
held in final form (`since`), as the widget does.

What must hold: the replay brings the customer's message once and the answer once (the partial
text that was stored while streaming, or more), never a second copy of either; re-sending the
customer's message does not store it again or start a second answer.

Known gap (issue #11 report): the replayed answer keeps `status: "streaming"` with what was
saved last; nothing yet marks an answer whose process died as failed and offers a person.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.support.fixtures import _free_port, _stop, start_uvicorn, wait_until
from tests.support.llm import LLMServer
from tests.test_faults_postgres import (  # noqa: F401 - fixture
    ORIGIN,
    _app_env,
    _manage,
    _stored,
    private_postgres,
)

pytestmark = pytest.mark.timeout(600)

RETURNS = (
    "# Returns and refunds\\n\\nYou can return any bike within 30 days of delivery for a full "
    "refund. Start a return from Orders, then Return item; we email a prepaid shipping label. "
    "Refunds reach your card within 5 business days after the bike arrives at our warehouse."
)
SEED = f"""
from tests.support.knowledge import ingest_text
from apps.tenants.models import WidgetKey
from apps.tenants.services import tenant_create
tenant = tenant_create(name="Acme", slug="acme", allowed_origins=["https://acme.example.com"])
ingest_text(tenant=tenant, title="Returns and refunds", text="{RETURNS}")
print("KEY", WidgetKey.objects.for_tenant(tenant).get().key)
"""


def _serve(env, port, log_path):
    import requests

    with log_path.open("ab") as log:
        process = start_uvicorn(port=port, env=env, log=log)

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"uvicorn exited. Its log:\n{log_path.read_text()[-4000:]}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    wait_until(up, timeout=90, message="uvicorn did not answer /healthz in 90 s")
    return process


def test_web_killed_mid_stream_replays_the_answer_once(
    private_postgres,  # noqa: F811 - the fixture imported above
    tmp_path,
):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    llm = LLMServer.start(log_dir=tmp_path / "llm")
    env = {
        **_app_env(private_postgres, tmp_path),
        "ASSISTANT_MODE": "generative",  # the model's tokens streamed as they come
        "ASSISTANT_DECISION": "rules",
        "ASSISTANT_ANSWERABILITY_THRESHOLD": "0",
        "LLM_BASE_URL": llm.base_url,
        "LLM_MAX_TOKENS": "400",
        "LLM_TIMEOUT": "120",
        "EMBEDDING_BACKEND": "torch",
        "EMBEDDING_DOCUMENT_BACKEND": "torch",
        "QDRANT_PATH": str(tmp_path / "qdrant"),
    }
    web = None
    try:
        _manage(env, "migrate", "--noinput", "-v0")
        seed = _manage(env, "shell", "-c", SEED)
        key = next(line.split()[1] for line in seed.splitlines() if line.startswith("KEY "))
        port = _free_port()
        log_path = tmp_path / "uvicorn.log"
        web = _serve(env, port, log_path)
        url = f"ws://127.0.0.1:{port}/ws/chat/?key={key}"

        socket = connect(url, origin=ORIGIN, open_timeout=10)
        assert json.loads(socket.recv(timeout=10))["type"] == "ready"
        socket.send(
            json.dumps(
                {
                    "type": "message",
                    "client_id": "q1",
                    "text": "How do I return a bike, and how long does the refund take?",
                }
            )
        )
        conversation_id, final_ids, streamed, answer_id = None, [], "", None
        while len(streamed) < 20:  # some tokens reached the customer
            frame = json.loads(socket.recv(timeout=300))
            conversation_id = frame.get("conversation_id") or conversation_id
            if frame["type"] == "message":
                final_ids.append(frame["message"]["id"])
            elif frame["type"] == "token":
                answer_id = frame["message_id"]
                streamed += frame.get("delta") or ""
            elif frame["type"] == "message_done":
                pytest.fail("the answer finished before the kill; it must stream longer")
        web.send_signal(signal.SIGKILL)
        web.wait(timeout=10)
        try:
            socket.recv(timeout=10)
            while True:
                socket.recv(timeout=10)
        except (ConnectionClosed, TimeoutError, OSError):
            pass

        time.sleep(1)
        web = _serve(env, port, log_path)
        since = max(final_ids)
        socket = connect(
            f"{url}&conversation={conversation_id}&since={since}", origin=ORIGIN, open_timeout=10
        )
        ready = json.loads(socket.recv(timeout=10))
        assert ready["type"] == "ready", ready
        replayed = ready["messages"]
        answers = [m for m in replayed if m["role"] == "assistant"]
        assert [m["id"] for m in answers] == [answer_id], replayed
        # What was stored while streaming: the start of what the customer saw, not nothing.
        assert answers[0]["content"].strip(), answers[0]
        assert streamed.startswith(answers[0]["content"][:10]) or answers[0]["content"].startswith(
            streamed[:10]
        ), (streamed, answers[0]["content"])

        # The widget re-sends the question it never saw answered: echoed, not stored again,
        # and not answered a second time.
        socket.send(json.dumps({"type": "message", "client_id": "q1", "text": "x"}))
        echo = json.loads(socket.recv(timeout=10))
        assert echo["type"] == "message" and echo["message"]["client_id"] == "q1", echo
        time.sleep(3)
        socket.close()
        stored = _stored(private_postgres)
        assert [c for role, c in stored if role == "customer"] == ["q1"], stored
        assert [role for role, _ in stored].count("assistant") == 1, stored
    finally:
        if web is not None:
            _stop(web, "uvicorn")
        llm.stop()
