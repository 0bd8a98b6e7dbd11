"""The one place that talks to the OpenAI-compatible LLM server (vLLM, or llama-cpp locally).

Tests wrap `chat_stream` and `chat_complete` to see exactly what is sent to the model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from django.conf import settings

logger = logging.getLogger(__name__)

# Errors that mean "the model did not (fully) answer": the caller falls back, never crashes.
LLM_ERRORS: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    httpx.HTTPError,
    asyncio.TimeoutError,
    ConnectionError,
)

# httpx clients belong to the event loop that created them, so keep one client per loop.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, openai.AsyncOpenAI]]
_clients = weakref.WeakKeyDictionary()


def client() -> openai.AsyncOpenAI:
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    key = (settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_TIMEOUT)
    if key not in per_loop:
        per_loop[key] = openai.AsyncOpenAI(
            base_url=settings.LLM_BASE_URL,
            api_key=settings.LLM_API_KEY,
            timeout=httpx.Timeout(settings.LLM_TIMEOUT, connect=min(5.0, settings.LLM_TIMEOUT)),
            # Falling back (excerpts, a person) beats making the customer wait through retries.
            max_retries=0,
        )
    return per_loop[key]


@dataclass
class StreamPiece:
    """A content delta, or (at the end, when the server reports it) the token usage."""

    delta: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def repetition_penalty() -> dict[str, float]:
    """The multiplicative repetition penalty under the names vLLM and llama.cpp read; each
    server ignores the other's name."""
    value = settings.LLM_REPETITION_PENALTY
    if value == 1.0:
        return {}
    return {"repetition_penalty": value, "repeat_penalty": value}


async def chat_stream(
    messages: list[dict[str, str]], *, max_tokens: int | None = None, temperature: float = 0.2
) -> AsyncIterator[StreamPiece]:
    """Stream a chat completion. Raises one of LLM_ERRORS when the server fails."""
    stream = await client().chat.completions.create(
        model=settings.LLM_MODEL,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=max_tokens or settings.LLM_MAX_TOKENS,
        temperature=temperature,
        frequency_penalty=settings.LLM_FREQUENCY_PENALTY,
        extra_body=repetition_penalty(),
    )
    try:
        async for chunk in stream:
            for choice in chunk.choices or []:
                delta = getattr(choice.delta, "content", None)
                if delta:
                    yield StreamPiece(delta=delta)
            if chunk.usage is not None:
                yield StreamPiece(
                    prompt_tokens=chunk.usage.prompt_tokens,
                    completion_tokens=chunk.usage.completion_tokens,
                )
    finally:
        await stream.close()


async def chat_complete(
    messages: list[dict[str, str]],
    *,
    max_tokens: int = 64,
    temperature: float = 0.0,
    timeout: float | None = None,
    response_format: dict[str, Any] | None = None,
) -> str:
    """One non-streamed completion; its text."""
    kwargs: dict[str, Any] = {}
    if response_format is not None:
        kwargs["response_format"] = response_format
    response = await client().chat.completions.create(
        model=settings.LLM_MODEL,
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        timeout=timeout,
        **kwargs,
    )
    return (response.choices[0].message.content or "").strip()


# Servers differ in how they take a JSON schema: vLLM (and OpenAI) accept
# {"type": "json_schema", ...}; llama-cpp-python's server takes {"type": "json_object",
# "schema": ...}. We try the standard form first and remember per server which one works.
_schema_style: dict[str, str] = {}


def _response_format(style: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    if style == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
    return {"type": "json_object", "schema": schema}


async def chat_structured(
    messages: list[dict[str, str]],
    *,
    name: str,
    schema: dict[str, Any],
    max_tokens: int = 96,
    timeout: float | None = None,
) -> dict[str, Any]:
    """A completion constrained to `schema`, parsed. Raises LLM_ERRORS or ValueError."""
    base_url = settings.LLM_BASE_URL
    styles = [_schema_style[base_url]] if base_url in _schema_style else []
    styles += [s for s in ("json_schema", "json_object") if s not in styles]
    last_error: BaseException | None = None
    for style in styles:
        try:
            text = await chat_complete(
                messages,
                max_tokens=max_tokens,
                timeout=timeout,
                response_format=_response_format(style, name, schema),
            )
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            last_error = exc
            continue
        except openai.InternalServerError as exc:
            # llama-cpp-python answers an unknown response_format type with a 500.
            if "response_format" not in str(exc):
                raise
            last_error = exc
            continue
        _schema_style[base_url] = style
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("structured output is not an object")
        return value
    assert last_error is not None
    raise last_error
