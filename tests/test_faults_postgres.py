"""PostgreSQL restarted, or down, while a customer chats (issue #11).

Everything is real: a private PostgreSQL cluster (initdb on a free loopback port, never the
shared server), migrated by `manage.py migrate`; uvicorn serving the app on it; a websocket
client that behaves like the widget (on an error or a dropped socket it reconnects to the same
conversation and re-sends the message under the same `client_id`). The assistant runs in
`echo` mode so the database is the only thing under test.

What must hold: every customer message is either stored and answered, or refused (an error
frame or a closed socket, promptly) and then stored once and answered when re-sent. Never
silently dropped, never stored twice, never answered twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import REPO_ROOT, _free_port, _stop, start_uvicorn, wait_until

pytestmark = pytest.mark.timeout(300)

ORIGIN = "https://acme.example.com"


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found and shutil.which("initdb"):
        found = [shutil.which("initdb")]
    if not found:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed; install them.")
    return Path(found[-1]).parent


@dataclass
class PrivatePostgres:
    bin: Path
    data: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/supportai_fault"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not under pytest's tmp_path: the postgres user must be able to reach the folder.
    root = Path(tempfile.mkdtemp(prefix="supportai-fault-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    pg = PrivatePostgres(bin=_pg_bin(), data=root / "data", port=_free_port(), log=root / "log")
    try:
        pg._run("initdb", "-D", str(pg.data), "-A", "trust", "-U", "postgres")
        pg.start()
        pg._run(
            "createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "supportai_fault"
        )
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop("immediate")  # unless already stopped
        shutil.rmtree(root, ignore_errors=True)


def _app_env(pg: PrivatePostgres, tmp_path: Path) -> dict[str, str]:
    from django.conf import settings

    return {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "fault-test-secret-key-that-is-long-enough-for-production",
        "SECURE_COOKIES": "false",
        "DATABASE_URL": pg.url,
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": f"supportai-fault-pg-{pg.port}",
        "DATA_DIR": str(tmp_path / "data"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ASSISTANT_MODE": "echo",
        "CHAT_RATE_CONNECTS_PER_CLIENT": "0",
        "CHAT_RATE_MESSAGES_PER_CLIENT": "0",
        "CHAT_RATE_CONNECTS_PER_KEY": "0",
        "CHAT_RATE_MESSAGES_PER_KEY": "0",
        "QDRANT_URL": "",
        "QDRANT_LOCAL_ENGINE": "edge",
        "PYTHONUNBUFFERED": "1",
    }


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


SEED = """
from apps.tenants.models import WidgetKey
from apps.tenants.services import tenant_create
tenant = tenant_create(name="Acme", slug="acme", allowed_origins=["https://acme.example.com"])
print("KEY", WidgetKey.objects.for_tenant(tenant).get().key)
"""


class Widget:
    """A websocket client that retries like the widget: same conversation, same client_id."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.conversation_id: str | None = None
        self.socket: Any = None
        self.refusals: list[str] = []
        self.replayed: list[dict[str, Any]] = []

    def connect(self) -> None:
        from websockets.sync.client import connect

        url = f"{self.base}/ws/chat/?key={self.key}"
        if self.conversation_id:
            url += f"&conversation={self.conversation_id}"
        self.socket = connect(url, origin=ORIGIN, open_timeout=10, close_timeout=2)
        ready = json.loads(self.socket.recv(timeout=10))
        assert ready["type"] == "ready", ready
        self.replayed = ready.get("messages") or []

    def answered_in_replay(self, client_id: str) -> bool:
        """The replay on (re)connect holds the message and a finished answer after it."""
        ids = [m["id"] for m in self.replayed if m.get("client_id") == client_id]
        return bool(ids) and any(
            m["role"] == "assistant" and m["id"] > ids[0] and m.get("status") == "complete"
            for m in self.replayed
        )

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def _attempt(self, client_id: str, text: str) -> bool:
        """One try: True once the answer to `client_id` is done; False if refused or dropped."""
        from websockets.exceptions import ConnectionClosed

        try:
            if self.socket is None:
                self.connect()
                if self.answered_in_replay(client_id):
                    return True  # stored and answered while this client was away
            self.socket.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
            asked_id = None
            while True:
                # Prompt: a refusal must arrive within seconds, not leave the customer waiting.
                frame = json.loads(self.socket.recv(timeout=20))
                if frame.get("conversation_id"):
                    self.conversation_id = frame["conversation_id"]
                if frame["type"] == "message" and frame["message"].get("client_id") == client_id:
                    asked_id = frame["message"]["id"]
                elif frame["type"] == "message_done" and asked_id is not None:
                    if frame["message"]["id"] > asked_id:
                        return True
                elif frame["type"] == "error":
                    self.refusals.append(f"error {frame.get('code')}: {frame.get('message')}")
                    return False
        except ConnectionClosed as exc:
            self.refusals.append(f"closed {exc.rcvd.code if exc.rcvd else None}")
        except (OSError, TimeoutError) as exc:
            self.refusals.append(f"{type(exc).__name__}: {exc}")
        self.close()
        return False

    def say(self, client_id: str, text: str, *, deadline_s: float = 60) -> int:
        """Send until answered; returns how many attempts it took."""
        deadline = time.monotonic() + deadline_s
        attempts = 0
        while time.monotonic() < deadline:
            attempts += 1
            if self._attempt(client_id, text):
                return attempts
            time.sleep(1)
        raise AssertionError(f"{client_id} never answered; refusals: {self.refusals}")


def _stored(pg: PrivatePostgres) -> list[tuple[str, str | None]]:
    import psycopg

    with psycopg.connect(pg.url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT role, client_id FROM conversations_message ORDER BY id"
        ).fetchall()
    return [(role, client_id) for role, client_id in rows]


@pytest.fixture
def chat_server(private_postgres, tmp_path) -> Iterator[tuple[PrivatePostgres, Widget]]:
    import requests

    env = _app_env(private_postgres, tmp_path)
    _manage(env, "migrate", "--noinput", "-v0")
    key = next(
        line.split()[1]
        for line in _manage(env, "shell", "-c", SEED).splitlines()
        if line.startswith("KEY ")
    )
    port = _free_port()
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        process = start_uvicorn(port=port, env=env, log=log)

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"uvicorn exited. Its log:\n{log_path.read_text()[-4000:]}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_until(up, timeout=60, message="uvicorn did not answer /healthz in 60 s")
        widget = Widget(f"ws://127.0.0.1:{port}", key)
        yield private_postgres, widget
        widget.close()
    finally:
        _stop(process, "uvicorn")


def test_postgres_restart_and_outage_lose_and_duplicate_no_customer_message(chat_server):
    pg, widget = chat_server
    assert widget.say("c1", "Hello, where is my order?") == 1

    # A restart between two messages: the next message is stored and answered.
    pg.restart()
    widget.say("c2", "Are you still there?")

    # Down while the customer writes: refused (error frame or closed socket), then stored
    # once and answered when the widget re-sends it after the database is back.
    pg.stop()
    refusals_before = len(widget.refusals)
    assert not widget._attempt("c3", "Hello again?"), "answered while the database was down"
    assert len(widget.refusals) > refusals_before
    pg.start()
    widget.say("c3", "Hello again?")

    stored = _stored(pg)
    customer = [client_id for role, client_id in stored if role == "customer"]
    assistant = [role for role, _ in stored if role == "assistant"]
    assert customer == ["c1", "c2", "c3"], stored
    assert len(assistant) == 3, stored
