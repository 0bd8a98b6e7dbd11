"""Helpers for tests that talk to the websockets: the customer's chat and the agents' console."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.conversations import services
from supportai.routing import websocket_urlpatterns

application = URLRouter(websocket_urlpatterns)
# The origin the agent console's page is served from in tests (the default test host).
SITE_ORIGIN = b"http://127.0.0.1"


def origin_of(world: Any) -> str:
    return world.tenant.allowed_origins[0]


def chat_communicator(
    *,
    key: str,
    origin: str | None,
    client: str | None = None,
    **params: Any,
) -> WebsocketCommunicator:
    query = {"key": key, **{k: v for k, v in params.items() if v is not None}}
    headers = [(b"origin", origin.encode())] if origin else []
    communicator = WebsocketCommunicator(
        application, f"/ws/chat/?{urlencode(query)}", headers=headers
    )
    # Every test connection gets its own address unless told otherwise, so per-client rate
    # limits only bite in the tests about them.
    communicator.scope["client"] = (client or f"10.{uuid.uuid4().int % 250}.0.1", 40000)
    return communicator


async def open_chat(world: Any, **params: Any) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """Connect with the world's widget key from its allowed origin; returns (socket, ready)."""
    params.setdefault("origin", origin_of(world))
    communicator = chat_communicator(key=world.widget_key.key, **params)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    ready = await communicator.receive_json_from(timeout=10)
    assert ready["type"] == "ready", ready
    return communicator, ready


async def expect_close(communicator: WebsocketCommunicator, *, timeout: float = 10) -> int:
    """Wait for the server to close; returns the close code (frames before it are skipped).

    Then the socket is disconnected, as a browser's TCP close would, so the consumer ends
    instead of lingering until the test's event loop is torn down.
    """
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            await communicator.disconnect(timeout=timeout)
            return output.get("code", 1000)


async def receive_until(
    communicator: WebsocketCommunicator, frame_type: str, *, timeout: float = 60
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Frames up to (not including) the first of `frame_type`, and that frame."""
    seen: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no {frame_type!r} frame within {timeout} s; got {seen}")
        try:
            frame = await communicator.receive_json_from(timeout=left)
        except TimeoutError:
            message = f"no {frame_type!r} frame within {timeout} s; got {seen}"
            raise AssertionError(message) from None
        if frame["type"] == frame_type:
            return seen, frame
        seen.append(frame)


async def drain(communicator: WebsocketCommunicator, *, quiet: float = 0.3) -> list[dict]:
    """Every frame that arrives until the socket has been quiet for `quiet` seconds."""
    frames = []
    while not await communicator.receive_nothing(timeout=quiet):
        frames.append(await communicator.receive_json_from())
    return frames


@pytest.fixture
def chat_settings(settings: Any) -> Any:
    """Generous limits and a model-free assistant, for protocol tests. (Every test gets a
    fresh channel layer from the root conftest.)"""
    settings.CHAT_RATE_CONNECTS_PER_KEY = 0
    settings.CHAT_RATE_CONNECTS_PER_CLIENT = 0
    settings.CHAT_RATE_MESSAGES_PER_KEY = 0
    settings.CHAT_RATE_MESSAGES_PER_CLIENT = 0
    settings.ASSISTANT_MODE = "echo"
    return settings


async def receive_answer(
    communicator: WebsocketCommunicator, *, timeout: float = 60
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Frames of one assistant answer up to its `message_done`, and that frame. The assistant's
    closing `typing: false` (sent after the answer) is consumed too."""
    before, done = await receive_until(communicator, "message_done", timeout=timeout)
    while True:
        _, typing = await receive_until(communicator, "typing", timeout=10)
        if typing["role"] == "assistant" and not typing["active"]:
            return before, done


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def console_socket(
    user: Any, slug: str, *, origin: bytes | None = SITE_ORIGIN
) -> WebsocketCommunicator:
    """The agent console's websocket for `user` (signed in) and tenant `slug`, not yet connected."""
    client = await sync_to_async(_signed_in)(user)
    headers = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    if origin:
        headers.append((b"origin", origin))
    return WebsocketCommunicator(application, f"/ws/console/?tenant={slug}", headers=headers)


def conversation_with_messages(world: Any, count: int, **kwargs: Any) -> Any:
    """A conversation of `world`'s widget key with `count` customer messages m0, m1, ..."""
    conversation = services.conversation_start(
        tenant=world.tenant, widget_key=world.widget_key, **kwargs
    )
    for i in range(count):
        services.message_post_customer(conversation=conversation, text=f"m{i}", client_id=f"c{i}")
    return conversation


async def send_message(communicator: WebsocketCommunicator, text: str, client_id: str) -> dict:
    """Send a customer message and return its echo."""
    await communicator.send_json_to({"type": "message", "client_id": client_id, "text": text})
    _, echo = await receive_until(communicator, "message", timeout=10)
    return echo
