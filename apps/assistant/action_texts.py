"""What a chat turn with an action says (actions_turn.py): asking to sign in or to confirm, the
live result as text and as its cited source, and what went wrong."""

from __future__ import annotations

from typing import Any

from apps.actions import matching
from apps.actions.models import Action, ActionCall
from apps.actions.runner import Outcome
from apps.assistant import prompts

SIGN_IN_TEXT = (
    "I can only look that up for a signed-in customer, so I can't check it here. Please sign "
    "in on our website and ask again."
)
CONFIRM_TEXT = "Please confirm: {title} for {params}. Nothing changes until you press Confirm."
DECLINED_TEXT = "OK, I haven't done anything. Is there something else I can help you with?"
DUPLICATE_TEXT = "That was already confirmed."
NOT_FOUND_TEXT = (
    "I couldn't find {params} for your account. Please check it, or talk to a person from the team."
)
FAILED_TEXT = "I couldn't get an answer from our systems for “{title}” just now."
FAILED_CHANGE_TEXT = (
    "I couldn't complete “{title}” just now, and I won't retry it on my own, so please check "
    "before asking again."
)
# The source's title says the answer is not from an article but from the system, now.
LIVE_SUFFIX = ", live"


def params_text(action: Action, params: dict[str, Any]) -> str:
    """'order number NW-482913' for the parameters the customer gave (not identity ones)."""
    bound = set((action.identity_bindings or {}).keys())
    parts = [f"{matching.label(action, k)} {v}" for k, v in params.items() if k not in bound]
    return ", ".join(parts) or action.title.lower()


def field_label(path: str) -> str:
    return path.rsplit(".", 1)[-1].replace("_", " ")


def field_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def source_title(action: Action, params: dict[str, Any]) -> str:
    return f"{action.title}: {params_text(action, params)}{LIVE_SUFFIX}"


def result_text(action: Action, params: dict[str, Any], shown: dict[str, Any]) -> str:
    facts = "; ".join(f"{field_label(k)}: {field_value(v)}" for k, v in shown.items())
    facts = facts.rstrip(". ")  # the sentence ends with its own full stop
    subject = params_text(action, params)
    if action.changes_data:
        # What the system says happened (it may have refused: "already shipped").
        lead = f"{action.title} for {subject}"
        return f"{lead}: {facts}. [1]" if facts else f"{lead}: done. [1]"
    if not facts:
        return f"{action.title} for {subject}: our system answered, with nothing to show. [1]"
    return f"Here is what our system says right now about {subject}: {facts}. [1]"


def citation(action: Action, call: ActionCall, params: dict[str, Any], text: str) -> dict:
    return {
        "n": 1,
        "title": source_title(action, params),
        "url": None,
        "snippet": text.replace(" [1]", "")[:200],
        "action_call_id": str(call.public_id),
        "kind": "action",
    }


def failure_text(action: Action, params: dict[str, Any], outcome: Outcome) -> str:
    if outcome.kind == "not_found":
        return NOT_FOUND_TEXT.format(params=params_text(action, params))
    template = FAILED_CHANGE_TEXT if action.changes_data else FAILED_TEXT
    return template.format(title=action.title) + prompts.OFFER_PERSON_TEXT
