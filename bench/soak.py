"""Soak: simulated customers chat for a while as Redis, PostgreSQL and the web process fail.

    .venv/bin/python bench/soak.py --customers 20 --minutes 10 --fault-every 60

Everything runs privately on loopback: a PostgreSQL cluster (initdb on a free port), a
redis-server without persistence, uvicorn and a Celery worker, all started here and stopped at
the end. The assistant runs in `echo` mode (the database, the channel layer and the processes
are what is soaked, not the model). Each customer is a websocket client that behaves like the
widget: it sends a message, waits for the answer, and on an error, a dropped socket or a
timeout reconnects to its conversation, reads the replay, and re-sends under the same
`client_id` until the message is answered.

Faults are injected in turn every `--fault-every` seconds: Redis killed and restarted empty,
PostgreSQL restarted (fast shutdown), uvicorn SIGKILLed and started again.

At the end the database is read and a table printed: messages sent (distinct client ids),
stored, answered, duplicated (stored more than once), lost (sent, never stored) and
unanswered. Goal: 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://soak.example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.2)
    raise SystemExit(f"soak: {what} did not come up within {timeout:.0f} s")


# --- The private processes -----------------------------------------------------------------------


class Postgres:
    def __init__(self, root: Path) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        initdb = found[-1] if found else shutil.which("initdb")
        if not initdb:
            raise SystemExit("soak: PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin = Path(initdb).parent
        self.root, self.data, self.port = root, root / "data", free_port()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/soak"

    def run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "soak")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "postgres.log")
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


class Redis:
    def __init__(self, root: Path) -> None:
        if shutil.which("redis-server") is None:
            raise SystemExit("soak: redis-server is not installed")
        self.port, self.log, self.process = free_port(), root / "redis.log", None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(client.ping, timeout=20, what="redis")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class Server:
    """A uvicorn or Celery worker subprocess that can be killed and started again."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log, self.process = command, env, log, None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# --- Customers -----------------------------------------------------------------------------------


@dataclass
class Tally:
    sent: set[str] = field(default_factory=set)
    answered_seen: set[str] = field(default_factory=set)
    retries: int = 0
    refusals: dict[str, int] = field(default_factory=dict)

    def refused(self, why: str) -> None:
        self.refusals[why] = self.refusals.get(why, 0) + 1


async def customer(number: int, base: str, key: str, stop_at: float, tally: Tally) -> None:
    import websockets

    conversation_id: str | None = None
    ws = None
    sequence = 0
    rng = random.Random(number)

    async def connect() -> list[dict]:
        nonlocal ws
        url = f"{base}/ws/chat/?key={key}"
        if conversation_id:
            url += f"&conversation={conversation_id}"
        ws = await websockets.connect(url, origin=ORIGIN, open_timeout=10, close_timeout=2)
        ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if ready.get("type") != "ready":
            raise ConnectionError(f"no ready frame: {ready}")
        return ready.get("messages") or []

    def answered_in(replay: list[dict], client_id: str) -> bool:
        ids = [m["id"] for m in replay if m.get("client_id") == client_id]
        return bool(ids) and any(
            m["role"] == "assistant" and m["id"] > ids[0] and m.get("status") == "complete"
            for m in replay
        )

    while time.monotonic() < stop_at:
        sequence += 1
        client_id = f"c{number}-{sequence}"
        text = f"Customer {number} asks question {sequence}: where is my order?"
        tally.sent.add(client_id)
        answered = False
        give_up = time.monotonic() + 120
        while not answered and time.monotonic() < give_up:
            try:
                if ws is None:
                    replay = await connect()
                    if answered_in(replay, client_id):
                        answered = True
                        break
                await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
                asked_id = None
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    conversation_id = frame.get("conversation_id") or conversation_id
                    kind = frame.get("type")
                    message = frame.get("message") or {}
                    if kind == "message" and message.get("client_id") == client_id:
                        asked_id = message["id"]
                    elif kind == "message_done" and asked_id is not None:
                        if message.get("id", 0) > asked_id:
                            answered = True
                            break
                    elif kind == "error":
                        tally.refused(f"error:{frame.get('code')}")
                        raise ConnectionError("refused")
            except (OSError, ConnectionError, TimeoutError) as exc:
                tally.refused(type(exc).__name__)
                tally.retries += 1
            except Exception as exc:  # noqa: BLE001 - websockets' ConnectionClosed and friends
                tally.refused(type(exc).__name__)
                tally.retries += 1
            if not answered:
                if ws is not None:
                    with contextlib.suppress(Exception):
                        await ws.close()
                    ws = None
                await asyncio.sleep(1)
        if answered:
            tally.answered_seen.add(client_id)
        await asyncio.sleep(rng.uniform(0.5, 2.0))
    if ws is not None:
        with contextlib.suppress(Exception):
            await ws.close()


# --- The run -------------------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"soak: manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
    return result.stdout


SEED = """
from apps.tenants.models import WidgetKey
from apps.tenants.services import tenant_create
tenant = tenant_create(name="Soak", slug="soak", allowed_origins=["https://soak.example.com"])
print("KEY", WidgetKey.objects.for_tenant(tenant).get().key)
"""


def count(pg: Postgres, sent: set[str]) -> dict[str, int]:
    import psycopg

    with psycopg.connect(pg.url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT conversation_id, id, role, client_id FROM conversations_message "
            "ORDER BY conversation_id, id"
        ).fetchall()
    stored: dict[str, int] = {}
    answered: set[str] = set()
    last_customer: dict[int, str] = {}
    for conversation, _id, role, client_id in rows:
        if role == "customer":
            stored[client_id] = stored.get(client_id, 0) + 1
            last_customer[conversation] = client_id
        elif role == "assistant" and conversation in last_customer:
            answered.add(last_customer[conversation])
    return {
        "sent": len(sent),
        "stored": len(stored),
        "answered": len(answered & set(stored)),
        "duplicated": sum(1 for n in stored.values() if n > 1),
        "lost": len(sent - set(stored)),
        "unanswered": len(set(stored) - answered),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults")
    parser.add_argument(
        "--faults", default="redis,postgres,web", help="comma-separated: redis, postgres, web"
    )
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]

    root = Path(tempfile.mkdtemp(prefix="supportai-soak-"))
    pg, redis_server = Postgres(root), Redis(root)
    web = worker = None
    try:
        pg.init()
        redis_server.start()
        port = free_port()
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": "soak-secret-key-that-is-long-enough-for-production-mode",
            "SECURE_COOKIES": "false",
            "DATABASE_URL": pg.url,
            "REDIS_URL": redis_server.url,
            "CELERY_BROKER_URL": redis_server.url,
            "CACHE_KEY_PREFIX": f"soak-{port}",
            "DATA_DIR": str(root / "data"),
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
        manage(env, "migrate", "--noinput", "-v0")
        key = next(
            line.split()[1]
            for line in manage(env, "shell", "-c", SEED).splitlines()
            if line.startswith("KEY ")
        )
        web = Server(
            [
                *(sys.executable, "-m", "uvicorn", "supportai.asgi:application"),
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--log-level", "warning", "--ws", "websockets-sansio"),
            ],
            env,
            root / "uvicorn.log",
        )
        worker = Server(
            [
                *(sys.executable, "-m", "celery", "-A", "supportai", "worker"),
                *("-Q", "default,ingest,events,batch", "--pool=threads", "--concurrency=2"),
                *("--without-gossip", "--without-mingle", "--loglevel=WARNING"),
            ],
            env,
            root / "worker.log",
        )
        import requests

        def web_up() -> bool:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok

        web.start()
        worker.start()
        wait_for(web_up, timeout=90, what="uvicorn")

        tally = Tally()
        started = time.monotonic()
        stop_at = started + args.minutes * 60
        injected: list[str] = []

        async def inject() -> None:
            turn = 0
            while time.monotonic() + args.fault_every < stop_at:
                await asyncio.sleep(args.fault_every)
                fault = faults[turn % len(faults)]
                turn += 1
                at = time.monotonic() - started
                if fault == "redis":
                    await asyncio.to_thread(redis_server.kill)
                    await asyncio.to_thread(redis_server.start)
                elif fault == "postgres":
                    await asyncio.to_thread(pg.stop)
                    await asyncio.to_thread(pg.start)
                elif fault == "web":
                    await asyncio.to_thread(web.kill)
                    await asyncio.to_thread(web.start)
                    await asyncio.to_thread(wait_for, web_up, timeout=90, what="uvicorn")
                injected.append(f"{at:.0f}s {fault}")
                print(f"  [{at:5.0f}s] fault: {fault} restarted", flush=True)

        async def run() -> None:
            base = f"ws://127.0.0.1:{port}"
            await asyncio.gather(
                inject(),
                *(customer(n, base, key, stop_at, tally) for n in range(args.customers)),
            )

        print(
            f"soak: {args.customers} customers for {args.minutes:g} min, "
            f"a fault every {args.fault_every:g} s ({', '.join(faults)})",
            flush=True,
        )
        asyncio.run(run())
        elapsed = time.monotonic() - started
        result = count(pg, tally.sent)
        print(f"\nran {elapsed:.0f} s; faults injected: {', '.join(injected) or 'none'}")
        print(f"client retries: {tally.retries}; refusals seen: {tally.refusals}")
        print("\n| sent | stored | answered | duplicated | lost | unanswered |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(
            f"| {result['sent']} | {result['stored']} | {result['answered']} | "
            f"{result['duplicated']} | {result['lost']} | {result['unanswered']} |"
        )
        return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1
    finally:
        for server in (web, worker):
            if server is not None:
                server.kill(signal.SIGTERM)
        redis_server.kill()
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
