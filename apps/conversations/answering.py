"""Who answers customers: the assistant, a layer above this app, registers its entry points at
start-up (`AssistantConfig.ready`), as the workspace registers its router and visibility rule.
The chat transports of this app (the widget's websocket consumer, the API's ask) call them
through here, so this app imports nothing of the assistant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Answerer:
    # (conversation=, message=, access_groups=, language=): stream and store the answer.
    answer_message: Callable[..., Awaitable[Any]]
    # (text): embed a question early, so the answer's retrieval finds its vector ready.
    embed_ahead: Callable[[str], Awaitable[Any]]
    # What the chat says when the customer asks for a person.
    customer_request_text: str
    # (conversation=, call_id=, accept=, by=): run (or decline) an action the customer
    # confirmed; returns the frame to send back.
    confirm_action: Callable[..., Awaitable[dict[str, Any]]]


_answerer: Answerer | None = None


def answerer_register(answerer: Answerer | None) -> None:
    global _answerer
    _answerer = answerer


def answerer() -> Answerer:
    if _answerer is None:
        raise ImproperlyConfigured("No answerer registered; is apps.assistant installed?")
    return _answerer
