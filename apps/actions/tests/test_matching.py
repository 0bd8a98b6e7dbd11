"""Choosing an action and filling its parameters without a model (unit tests; no database)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from apps.actions import matching
from apps.actions.demo_orders import action_definitions


def actions() -> list[SimpleNamespace]:
    return [
        SimpleNamespace(pk=i, **{k: v for k, v in d.items() if k != "headers"})
        for i, d in enumerate(action_definitions("https://orders.example.com"))
    ]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("where is NW-482913?", "NW-482913"),
        ("order nw-482913 please", "NW-482913"),
        ("(NW-482913)", "NW-482913"),
        ("NW-4829130", None),  # seven digits: not an order number
        ("XNW-482913", None),
        ("no number here", None),
    ],
)
def test_order_numbers_are_found_by_the_schema_pattern(text, found):
    status = actions()[0]
    assert matching.extract_params(status, text).get("order_number") == found


def test_identity_bound_parameters_are_never_taken_from_the_text():
    status = actions()[0]
    params = matching.extract_params(status, "my email is bob@example.com, order NW-300118")
    assert params == {"order_number": "NW-300118"}
    assert matching.missing(status, params) == []
    with pytest.raises(matching.IdentityMissing):
        matching.bind_identity(status, None)
    assert matching.bind_identity(status, {"sub": "c1", "email": "a@x.org"}) == {"email": "a@x.org"}


def test_the_missing_parameter_is_asked_for_by_its_title():
    status = actions()[0]
    assert matching.missing(status, {}) == ["order_number"]
    assert matching.ask_text(status, ["order_number"]) == (
        "What is your order number (for example NW-482913)?"
    )


def test_keywords_and_values_choose_without_an_embedder():
    # With no embedder only shared example words and found values count.
    choice = matching.choose("cancel my order NW-517204", actions(), None, threshold=0.1)
    assert choice is not None and choice.action.name == "cancel_order"
    assert choice.params == {"order_number": "NW-517204"}
    assert matching.choose("how long does shipping take", actions(), None, threshold=0.1) is None
