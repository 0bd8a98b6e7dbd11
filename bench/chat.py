"""Time to first token through the chat websocket vs. the LLM server's own, on the defaults.

One run starts the local LLM server (llama-cpp-python, SmolLM2-135M) and uvicorn serving the
real ASGI app (PostgreSQL, Redis channel layer, embedded Qdrant with a small knowledge set
ingested by the real pipeline) with the product's default answer settings: the grounded
strategy and the answerability decision (ASSISTANT_MODE=grounded, ASSISTANT_DECISION=
answerability). For each question it measures:

- user-visible TTFT: from sending `{"type": "message"}` to the first `token` frame. With the
  grounded strategy the first token is the model's first sentence that passed the guard (or the
  extractive answer that replaced it, or a decline), so this includes the consumer, storing the
  message, retrieval, evidence, the model's time to first token AND to the end of its first
  sentence, and the guard;
- the LLM server's TTFT for the very request the assistant made (a relay in front of the server
  notes it), and a direct streaming call to the same server with the same request.

Between questions, one completion with the same system prompt and an unrelated question
replaces llama.cpp's cached prompt, as the previous customer's question would in production:
the stable system-prompt prefix stays cached, the facts and question are evaluated anew.
`--cold` evicts the whole prompt instead (an unrelated prompt), the worst case.

    .venv/bin/python bench/chat.py                 # 30 questions, a few minutes on 2 cores
    .venv/bin/python bench/chat.py --questions 60 --cold
    .venv/bin/python bench/chat.py --mode generative --decision rules   # the old path

Needs PostgreSQL and Redis (scripts/services.sh); uses the database `supportai_bench`
(created and migrated) and Redis db 9 unless DATABASE_URL / REDIS_URL say otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "How many days do I have to return a bike?",
    "How long does express delivery take?",
    "Do you ship to Switzerland?",
    "What does the frame warranty cover?",
    "How do I charge the e-bike battery in winter?",
    "When will my refund arrive?",
    "Can I change my delivery address after ordering?",
    "Which payment methods do you accept?",
    "How should I store the battery over winter?",
    "How do I start a return?",
]
KNOWLEDGE = {
    "Returns and refunds": (
        "You can return any bike within 30 days of delivery for a full refund. Start a return "
        "from your order page; we email you a prepaid shipping label. Refunds reach your card "
        "within 5 business days after the bike arrives at our warehouse."
    ),
    "Delivery": (
        "We ship to the EU, the UK and Switzerland. Standard delivery takes 3 to 5 business "
        "days; express delivery takes 1 to 2 business days and costs 15 euros. You can change "
        "the delivery address until the order ships."
    ),
    "Warranty": (
        "Frames carry a 5-year warranty and components 2 years. Wear parts such as tyres, "
        "brake pads and chains are not covered. Claims go through the order page."
    ),
    "E-bike batteries": (
        "Charge the battery at room temperature. In winter store it indoors at 40 to 60 "
        "percent charge and top it up every two months."
    ),
    "Payment": (
        "We accept Visa, Mastercard, PayPal, bank transfer and instalments over 12 months. "
        "Gift cards can be combined with any payment method."
    ),
}


# --- Environment shared with bench/ws_load.py --------------------------------------------------


def raise_file_limit(wanted: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_environment(**overrides: str) -> dict[str, str]:
    """Settings for this process and the servers it starts (existing variables win)."""
    data_dir = ROOT / "var" / "bench"
    defaults = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": "postgres://postgres:postgres@127.0.0.1:5432/supportai_bench",
        "REDIS_URL": "redis://127.0.0.1:6379/9",
        "CACHE_KEY_PREFIX": "bench",
        "DATA_DIR": str(data_dir),
        "QDRANT_URL": "",
        "QDRANT_LOCAL_ENGINE": "edge",
        "QDRANT_PATH": str(data_dir / "qdrant"),
        # Keep connections, as a production deployment would (the default 0 reconnects per
        # query, which measures PostgreSQL's connection set-up instead of the app).
        "DATABASE_CONN_MAX_AGE": "60",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LOG_LEVEL": "warning",
        "SECURE_COOKIES": "false",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    os.environ.update(overrides)
    Path(os.environ["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    return dict(os.environ)


def prepare_database() -> None:
    """Create the bench database if needed and migrate it, then set Django up here."""
    import psycopg

    url = urlparse(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    django.setup()


def create_tenant(origin: str, *, knowledge: bool = True):
    from apps.tenants.models import WidgetKey
    from apps.tenants.services import tenant_create

    slug = f"bench-{uuid.uuid4().hex[:8]}"
    tenant = tenant_create(name="Northwind Bikes", slug=slug, allowed_origins=[origin])
    if knowledge:
        from tests.support.knowledge import ingest_text

        for title, text in KNOWLEDGE.items():
            ingest_text(tenant=tenant, title=title, text=text)
    return tenant, WidgetKey.objects.for_tenant(tenant).get().key


def _raise_limits_in_child() -> None:
    raise_file_limit()


def start_process(command: list[str], *, log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_limits_in_child,
        )


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} did not start; log:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def start_uvicorn(port: int, env: dict[str, str], *, workers: int = 1) -> subprocess.Popen:
    log = Path(env["DATA_DIR"]) / f"uvicorn-{port}.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "supportai.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--backlog",
        "4096",
        "--workers",
        str(workers),
    ]
    process = start_process(command, log=log, env=env)
    wait_http(f"http://127.0.0.1:{port}/healthz", process, log)
    return process


def start_llm(port: int, env: dict[str, str]) -> subprocess.Popen:
    log = Path(env["DATA_DIR"]) / f"llm-{port}.log"
    command = [sys.executable, "-m", "supportai.local_llm", "--port", str(port)]
    process = start_process(command, log=log, env=env)
    wait_http(f"http://127.0.0.1:{port}/v1/models", process, log)
    return process


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name:<34} p50 {percentile(values, 50):8.1f} ms   p95 {percentile(values, 95):8.1f} ms"
        f"   (n={len(values)})"
    )


class TimingProxy:
    """A TCP relay in front of the LLM server that notes, per request, the time from the
    request's first byte to the first content token in the response.

    Measuring the model's own time to first token for the very request the assistant made
    lets the bench subtract it exactly, instead of comparing with a second call whose timing
    varies with whatever else the machine does.
    """

    # A content delta with at least one character (the first event only names the role).
    CONTENT = re.compile(rb'"content":\s*"[^"]')

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.ttft_ms: list[float] = []
        # The JSON body of every request, in order: the direct call replays the assistant's.
        self.bodies: list[dict] = []
        self.server: asyncio.base_events.Server | None = None

    @staticmethod
    def complete_body(request: bytes) -> dict | None:
        """The request's JSON body once all of it (per Content-Length) has arrived."""
        head, sep, body = request.partition(b"\r\n\r\n")
        if not sep:
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(body) < length:
            return None
        return json.loads(body[:length]) if length else {}

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        pending: list[float] = []

        async def upstream() -> None:
            request = b""
            while data := await reader.read(65536):
                if data.startswith((b"POST ", b"GET ")):
                    pending.append(time.perf_counter())
                    request = b""
                if request is not None:
                    request += data
                    body = self.complete_body(request)
                    if body is not None:
                        self.bodies.append(body)
                        request = None  # until the next request on this connection
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downstream() -> None:
            tail = b""
            while data := await up_reader.read(65536):
                window = tail + data
                if pending and self.CONTENT.search(window):
                    self.ttft_ms.append((time.perf_counter() - pending.pop(0)) * 1000)
                tail = window[-16:]
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await asyncio.gather(upstream(), downstream())


# --- The measurement ----------------------------------------------------------------------------


async def evict_prompt_cache(client, model: str, system: str | None = None) -> None:
    """One short completion that replaces llama.cpp's cached prompt: with `system`, the same
    system prompt and an unrelated question (the next customer); without, an unrelated prompt."""
    messages = [{"role": "user", "content": f"Say a number. {uuid.uuid4().hex}"}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    await client.chat.completions.create(model=model, messages=messages, max_tokens=1)


async def websocket_ttft(url: str, origin: str, question: str) -> tuple[float, str, int]:
    """Milliseconds to the first token, and the answer's conversation and number in it."""
    import websockets

    async with websockets.connect(url, origin=origin, max_size=2**20) as ws:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready", ready
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "message", "client_id": "b1", "text": question}))
        first, conversation = None, None
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "message" and conversation is None:
                conversation = frame["conversation_id"]
            if frame["type"] == "token" and first is None:
                first = (time.perf_counter() - started) * 1000
            if frame["type"] == "message_done":
                if first is None:
                    raise RuntimeError(f"no token before message_done: {frame}")
                return first, conversation, frame["message"]["id"]
            if frame["type"] in {"handoff", "error"}:
                raise RuntimeError(f"unexpected frame {frame}")


async def direct_ttft(client, request: dict) -> float | None:
    """The same request the assistant sent (messages, model, limits), timed from this side."""
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model=request["model"],
        messages=request["messages"],
        stream=True,
        max_tokens=request.get("max_tokens"),
        temperature=request.get("temperature"),
    )
    first = None
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = (time.perf_counter() - started) * 1000
    return first


async def run(
    args: argparse.Namespace, tenant, key: str, ws_url: str, origin: str, proxy: TimingProxy
) -> None:
    import openai
    from asgiref.sync import sync_to_async

    from apps.conversations.models import Message

    client = openai.AsyncOpenAI(base_url=os.environ["LLM_BASE_URL"], api_key="x", max_retries=0)
    model = os.environ.get("LLM_MODEL", "smollm2-135m-instruct")
    visible, visible_model, llm_own, direct, overhead = [], [], [], [], []
    server_first, retrieval, outcomes = [], [], {}
    system: str | None = None
    # One unmeasured round warms up both servers (model load, embedding model, connections).
    for i in range(args.questions + 1):
        question = f"{QUESTIONS[i % len(QUESTIONS)]} (#{i})"
        await evict_prompt_cache(client, model, None if args.cold else system)
        calls = len(proxy.bodies)
        ws_ms, conversation, seq = await websocket_ttft(f"{ws_url}?key={key}", origin, question)
        stored = await sync_to_async(Message.objects.for_tenant(tenant).get)(
            conversation__public_id=conversation, seq=seq
        )
        asked = [
            body
            for body in proxy.bodies[calls:]
            if question in json.dumps(body.get("messages", ""))
        ]
        if asked:
            request = asked[-1]
            system = next(
                (m["content"] for m in request["messages"] if m["role"] == "system"), system
            )
            llm_ms = proxy.ttft_ms[-1]
            await evict_prompt_cache(client, model, None if args.cold else system)
            direct_ms = await direct_ttft(client, request)
        if i == 0:
            continue
        outcome = (stored.grounding or {}).get("outcome") or stored.decision
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        visible.append(ws_ms)
        server_first.append(stored.first_token_ms)
        retrieval.append(stored.retrieval_ms)
        if asked:
            visible_model.append(ws_ms)
            llm_own.append(llm_ms)
            direct.append(direct_ms)
            overhead.append(ws_ms - llm_ms)
    print()
    print(summary("user-visible TTFT (all answers)", visible))
    print(summary("user-visible TTFT (model asked)", visible_model))
    print(summary("LLM server's own TTFT (relay)", llm_own))
    print(summary("LLM server TTFT, direct call", direct))
    print(summary("visible - LLM's own TTFT", overhead))
    print(summary("  server: retrieval_ms", retrieval))
    print(summary("  server: first_token_ms (stored)", server_first))
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


async def serve_and_run(args, tenant, key, web_port, origin, llm_port, proxy_port) -> None:
    proxy = TimingProxy(llm_port)
    proxy.server = await asyncio.start_server(proxy._serve, "127.0.0.1", proxy_port)
    async with proxy.server:
        await run(args, tenant, key, f"ws://127.0.0.1:{web_port}/ws/chat/", origin, proxy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument(
        "--mode", default="", help="ASSISTANT_MODE (default: the product's, grounded)"
    )
    parser.add_argument(
        "--decision", default="", help="ASSISTANT_DECISION (default: the product's, answerability)"
    )
    parser.add_argument("--cold", action="store_true", help="evict the whole prompt each time")
    parser.add_argument(
        "--engine", choices=["edge", "client"], default="edge", help="QDRANT_LOCAL_ENGINE"
    )
    args = parser.parse_args()
    raise_file_limit()
    llm_port, web_port, proxy_port = free_port(), free_port(), free_port()
    overrides = {
        "LLM_BASE_URL": f"http://127.0.0.1:{proxy_port}/v1",
        "CHAT_RATE_CONNECTS_PER_CLIENT": "0",
        "CHAT_RATE_MESSAGES_PER_CLIENT": "0",
        "QDRANT_LOCAL_ENGINE": args.engine,
    }
    if args.mode:
        overrides["ASSISTANT_MODE"] = args.mode
    if args.decision:
        overrides["ASSISTANT_DECISION"] = args.decision
    env = bench_environment(**overrides)
    prepare_database()
    origin = f"http://127.0.0.1:{web_port}"
    tenant, key = create_tenant(origin)
    from apps.knowledge import runtime

    runtime.reset_store()  # let go of the embedded store: from here on only uvicorn uses it
    llm = web = None
    try:
        llm = start_llm(llm_port, {**env, "LLM_BASE_URL": f"http://127.0.0.1:{llm_port}/v1"})
        web = start_uvicorn(web_port, env)
        print(
            f"LLM server :{llm_port} (LLM_THREADS={os.environ.get('LLM_THREADS', 'auto')}), "
            f"uvicorn :{web_port}, mode={env.get('ASSISTANT_MODE', 'grounded (default)')}, "
            f"decision={env.get('ASSISTANT_DECISION', 'answerability (default)')}, "
            f"prompt cache={'evicted' if args.cold else 'system prompt kept'}, "
            f"engine={args.engine}, embeddings={os.environ.get('EMBEDDING_BACKEND', 'default')}, "
            f"{args.questions} questions, {len(KNOWLEDGE)} documents"
        )
        asyncio.run(serve_and_run(args, tenant, key, web_port, origin, llm_port, proxy_port))
    finally:
        stop(web)
        stop(llm)


if __name__ == "__main__":
    main()
