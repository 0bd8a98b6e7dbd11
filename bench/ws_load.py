"""N concurrent chat websocket conversations on loopback: connect, send one message, get the
reply. Measures the websocket layer (consumer, auth, storing messages, channel layer), not the
model: the server runs with ASSISTANT_MODE=echo, which stores and sends a reply the way an
answer is stored and sent, without retrieval or an LLM call.

    .venv/bin/python bench/ws_load.py                       # 1000 conversations
    .venv/bin/python bench/ws_load.py --n 2000 --duration 180 --workers 2

Every conversation opens its own socket (all held open until the end), sends one message and
waits for the `message_done` reply. Connections are opened at most `--concurrency` at a time
(the rest queue), the whole run stops after `--duration` seconds, and errors are counted, not
raised. The open-file limit is raised for this process and the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chat as common


async def conversation(
    url: str, origin: str, index: int, gate: asyncio.Semaphore, hold: asyncio.Event, stats: dict
) -> None:
    import websockets

    try:
        async with gate:
            started = time.perf_counter()
            ws = await websockets.connect(url, origin=origin, open_timeout=60, max_size=2**20)
            ready = json.loads(await ws.recv())
            if ready["type"] != "ready":
                raise RuntimeError(f"expected ready, got {ready}")
            stats["connect"].append((time.perf_counter() - started) * 1000)
        try:
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "message", "client_id": f"c{index}", "text": "hi"}))
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "message_done":
                    stats["round_trip"].append((time.perf_counter() - sent) * 1000)
                    break
                if frame["type"] == "error":
                    raise RuntimeError(frame["code"])
            stats["open"] += 1
            await hold.wait()  # keep every socket open until all have had their turn
        finally:
            await ws.close()
    except Exception as exc:  # noqa: BLE001 — a load test counts failures instead of stopping
        kind = type(exc).__name__
        stats["errors"][kind] = stats["errors"].get(kind, 0) + 1


async def run(n: int, concurrency: int, duration: float, url: str, origin: str) -> dict:
    stats: dict = {"connect": [], "round_trip": [], "errors": {}, "open": 0}
    gate, hold = asyncio.Semaphore(concurrency), asyncio.Event()
    started = time.perf_counter()
    tasks = [asyncio.create_task(conversation(url, origin, i, gate, hold, stats)) for i in range(n)]
    deadline = started + duration

    while time.perf_counter() < deadline:
        done = len(stats["round_trip"]) + sum(stats["errors"].values())
        if done >= n:
            break
        await asyncio.sleep(0.1)
    stats["elapsed"] = time.perf_counter() - started
    stats["peak_open"] = stats["open"]
    hold.set()
    await asyncio.wait(tasks, timeout=30)
    for task in tasks:
        if not task.done():
            task.cancel()
            stats["errors"]["timed_out"] = stats["errors"].get("timed_out", 0) + 1
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="conversations (sockets)")
    parser.add_argument("--duration", type=float, default=120.0, help="stop after this many s")
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    limit = common.raise_file_limit()
    if limit < args.n * 2 + 100:
        sys.exit(f"the open-file limit is {limit}; {args.n} sockets need about {args.n * 2 + 100}")
    port = common.free_port()
    env = common.bench_environment(
        ASSISTANT_MODE="echo",
        CHAT_RATE_CONNECTS_PER_CLIENT="0",
        CHAT_RATE_CONNECTS_PER_KEY="0",
        CHAT_RATE_MESSAGES_PER_CLIENT="0",
        CHAT_RATE_MESSAGES_PER_KEY="0",
    )
    common.prepare_database()
    origin = f"http://127.0.0.1:{port}"
    _, key = common.create_tenant(origin, knowledge=False)
    web = None
    try:
        web = common.start_uvicorn(port, env, workers=args.workers)
        print(
            f"{args.n} conversations against uvicorn :{port} ({args.workers} worker(s), "
            f"ASSISTANT_MODE=echo, open-file limit {limit}, "
            f"DATABASE_CONN_MAX_AGE={os.environ['DATABASE_CONN_MAX_AGE']})"
        )
        stats = asyncio.run(
            run(
                args.n,
                args.concurrency,
                args.duration,
                f"ws://127.0.0.1:{port}/ws/chat/?key={key}",
                origin,
            )
        )
    finally:
        common.stop(web)
    completed = len(stats["round_trip"])
    print()
    print(
        f"completed {completed}/{args.n} in {stats['elapsed']:.1f} s "
        f"({completed / stats['elapsed']:.0f} conversations/s); "
        f"{stats['peak_open']} sockets open at once"
    )
    print(f"errors: {stats['errors'] or 'none'}")
    print(common.summary("connect (handshake + ready)", stats["connect"]))
    print(common.summary("round trip (message -> reply)", stats["round_trip"]))


if __name__ == "__main__":
    main()
