"""The vector store unreachable (issue #11): a customer still gets a clear answer and the offer
of a person, and /readyz says what is wrong.

Two real faults, no mocks:
- `QDRANT_URL` names a loopback port where nothing listens (connection refused);
- the embedded store is held by another process, a real subprocess that takes the store's file
  lock and keeps it, ignoring requests to hand it over: on the default engine (Qdrant Edge) the
  serving collection's lease, on qdrant-client's local mode the store-wide lock. The store
  holds a document that answers the question, so a search that got through would show.

The language model is not needed (nothing is retrieved, so nothing is asked of it); its URL
points at a closed port too.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time

import pytest

from apps.assistant import prompts
from apps.conversations.models import Conversation, Message, MessageRole
from apps.core.asyncdb import db_async
from apps.knowledge import runtime
from apps.knowledge.index_lifecycle import serving_index
from apps.knowledge.selectors import chunk_search
from tests.support.chat import open_chat, receive_answer
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_cache", "quiet_settings"),
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def quiet_settings(settings):
    settings.CHAT_RATE_CONNECTS_PER_CLIENT = 0
    settings.CHAT_RATE_MESSAGES_PER_CLIENT = 0
    settings.LLM_BASE_URL = f"http://127.0.0.1:{_closed_port()}/v1"
    settings.ASSISTANT_MODE = "grounded"
    return settings


@pytest.fixture
def unreachable_qdrant(settings):
    settings.QDRANT_URL = f"http://127.0.0.1:{_closed_port()}"
    runtime.reset_store()
    yield settings.QDRANT_URL
    runtime.reset_store()


RETURNS = (
    "Returning a bike: you can return a bike within 30 days of delivery for a full refund. "
    "Start the return from your order page and we email you a prepaid shipping label."
)


@pytest.fixture(params=["edge", "client"])
def store_held_elsewhere(request, knowledge_store, settings, tenant_a):  # noqa: F811
    """Another process takes the embedded store's lock and keeps it (no hand-over)."""
    settings.QDRANT_LOCAL_ENGINE = request.param
    settings.KNOWLEDGE_STORE_LOCK_TIMEOUT = 0.5
    runtime.reset_store()
    ingest_text(tenant=tenant_a.tenant, title="Returns", text=RETURNS)
    hits = chunk_search(tenant=tenant_a.tenant, query="How do I return a bike?")
    assert hits and "30 days" in hits[0].text, "the document must be findable before the fault"
    if request.param == "edge":
        collection = serving_index().collection
        lock_path = settings.QDRANT_PATH / "locks" / f"{collection}.lock"
    else:
        lock_path = settings.QDRANT_PATH / "client.lock"
    runtime.reset_store()  # this process lets go of the store, as an idle web process would
    assert lock_path.exists(), lock_path
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock_path)!r}, os.O_RDWR | os.O_CREAT, 0o644)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held", "the holder did not take the lock"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=10)
        runtime.reset_store()


async def _ask_and_check(world) -> None:
    communicator, _ = await open_chat(world)
    started = time.monotonic()
    await communicator.send_json_to(
        {"type": "message", "client_id": "q1", "text": "How do I return a bike?"}
    )
    _, done = await receive_answer(communicator, timeout=120)
    await communicator.disconnect()
    # A clear answer, quickly (not a minute-long wait for the store), offering a person.
    assert time.monotonic() - started < 30
    content = done["message"]["content"]
    assert prompts.OFFER_PERSON_TEXT.strip() in content, content
    assert done["message"]["status"] == "complete"

    @db_async
    def stored() -> tuple[list[Message], Conversation]:
        conversation = Conversation.objects.for_tenant(world.tenant).get()
        return list(Message.objects.for_tenant(world.tenant).order_by("id")), conversation

    messages, conversation = await stored()
    # The customer's message is kept, and answered once.
    assert [m.role for m in messages] == [MessageRole.CUSTOMER, MessageRole.ASSISTANT]
    assert messages[0].content == "How do I return a bike?"
    assert conversation.status != "resolved"


async def test_qdrant_refusing_connections_still_gets_the_customer_an_answer(
    tenant_a, unreachable_qdrant
):
    await _ask_and_check(tenant_a)


async def test_embedded_store_held_by_another_process_still_gets_an_answer(
    tenant_a, store_held_elsewhere
):
    await _ask_and_check(tenant_a)


@pytest.mark.usefixtures("unreachable_qdrant")
def test_readyz_reports_qdrant_refusing_connections(client):
    body = client.get("/readyz").json()
    qdrant = body["components"]["qdrant"]
    assert qdrant["ok"] is False, qdrant
    assert body["status"] != "ok"


@pytest.mark.usefixtures("store_held_elsewhere")
def test_readyz_reports_the_embedded_store_held_by_another_process(client):
    body = client.get("/readyz").json()
    qdrant = body["components"]["qdrant"]
    assert qdrant["ok"] is False, qdrant
    assert "another process" in qdrant["detail"]
    assert body["status"] != "ok"


@pytest.mark.usefixtures("knowledge_store")
def test_readyz_is_ok_while_a_healthy_process_holds_the_edge_shard(client, tenant_a, settings):
    """The edge engine keeps a shard open between calls; a holder that hands it over on request
    (here this process, lingering after a sync) is how the store works, not a fault."""
    ingest_text(tenant=tenant_a.tenant, title="Returns", text=RETURNS)
    lock_path = settings.QDRANT_PATH / "locks" / f"{serving_index().collection}.lock"
    fd = os.open(lock_path, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):  # the shard is still leased to this process
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    qdrant = client.get("/readyz").json()["components"]["qdrant"]
    assert qdrant["ok"] is True, qdrant
    hits = chunk_search(tenant=tenant_a.tenant, query="How do I return a bike?")
    assert hits and "30 days" in hits[0].text
