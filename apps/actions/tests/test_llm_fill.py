"""The model as the fallback for parameters the matcher cannot find.

The schema-constrained call runs against the real local LLM server (llama.cpp); what the
assistant keeps of the model's answer (only values that fit the schema and are written in the
question) is our own logic, tested with the model's answer given.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from apps.assistant import actions_turn
from apps.core import llm
from tests.support.llm import llm_server  # noqa: F401

CITY = {"type": "string", "title": "city", "maxLength": 40}
ACTION = SimpleNamespace(
    pk=1,
    name="delivery_slots",
    title="Delivery slots",
    description="The free delivery slots of the next week in the customer's city.",
    parameters={
        "type": "object",
        "properties": {"city": CITY, "order_number": {"type": "string", "pattern": r"^NW-\d{6}$"}},
        "required": ["city"],
    },
    identity_bindings={},
    changes_data=False,
)


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        ({"city": "Berlin"}, {"city": "Berlin"}),
        ({"city": "Munich"}, {}),  # not in the question: invented
        ({"city": "B" * 50}, {}),  # does not fit the schema
        ({"city": None}, {}),
        ({}, {}),
    ],
)
async def test_only_values_written_in_the_question_and_fitting_the_schema_are_kept(
    settings, monkeypatch, answer, kept
):
    settings.ACTIONS_LLM_FILL = "json_schema"

    async def chat_structured(messages, **kwargs):
        assert kwargs["schema"]["properties"] == {"city": {"type": "string", "maxLength": 40}}
        return answer

    monkeypatch.setattr(llm, "chat_structured", chat_structured)
    question = "Which delivery slots are free in Berlin next week?"
    assert await actions_turn.llm_fill(ACTION, question, ["city"]) == kept


async def test_nothing_is_asked_of_the_model_when_it_is_off(settings, monkeypatch):
    settings.ACTIONS_LLM_FILL = "off"

    async def chat_structured(messages, **kwargs):
        raise AssertionError("the model was called")

    monkeypatch.setattr(llm, "chat_structured", chat_structured)
    assert await actions_turn.llm_fill(ACTION, "slots in Berlin?", ["city"]) == {}


@pytest.mark.integration
@pytest.mark.timeout(900)
async def test_the_local_server_answers_the_constrained_call(settings, llm_server):  # noqa: F811
    """llama.cpp takes the schema the fallback sends and answers with an object that fits it
    (what it puts in the object is the 135M model's business)."""
    settings.LLM_BASE_URL = llm_server
    settings.LLM_TIMEOUT = 300.0
    question = "Which delivery slots are free in Berlin next week?"
    value = await llm.chat_structured(
        actions_turn._fill_messages(ACTION, question, ["city"]),
        name="action_parameters",
        schema=actions_turn._fill_schema(ACTION, ["city"]),
        max_tokens=96,
        timeout=300.0,
    )
    assert isinstance(value, dict) and set(value) <= {"city"}
    if "city" in value:
        assert isinstance(value["city"], str) and len(value["city"]) <= 40
