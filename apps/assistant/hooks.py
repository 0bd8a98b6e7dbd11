"""What the assistant plugs into the layers below it, connected once from
`AssistantConfig.ready()`: the chat's transports (in conversations) answer through these."""

from __future__ import annotations

from apps.assistant import actions_turn, prompts, services
from apps.conversations import answering


def connect() -> None:
    answering.answerer_register(
        answering.Answerer(
            answer_message=services.answer_message,
            embed_ahead=services.embed_ahead,
            customer_request_text=prompts.CUSTOMER_REQUEST_TEXT,
            confirm_action=actions_turn.confirm,
        )
    )
