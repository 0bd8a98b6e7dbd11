"""Choosing an action for a question and filling its parameters, without a language model.

The demo model (135M parameters) cannot be trusted to pick a tool or copy an order number, so
the choice is deterministic first:

- an action's score is the best cosine between the question and its description or example
  questions (the embedder the assistant already loaded), plus a bonus when the question holds a
  value that fits one of its parameters (an order number matching `^NW-\\d{6}$`) and a smaller
  one per word it shares with the action's examples;
- parameters come from the JSON Schema: a `pattern` is searched for in the text (anchors
  dropped), an `enum` value by word, `format: email` by shape; identity-bound parameters come
  only from the signed token, never from what the customer types.

A language model may fill what this cannot (apps/assistant/actions_turn.py), always validated
against the same schema afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

Encode = Callable[[Sequence[str]], np.ndarray]

# A question at least this close (cosine, plus bonuses) to an action's description or examples
# asks for it. Calibrated with `manage.py evaluate_actions` (docs/actions.md).
MATCH_THRESHOLD = 0.55
# ... and this much ahead of the runner-up, or the question is ambiguous: then only an action
# that changes nothing may be chosen.
MATCH_MARGIN = 0.03
VALUE_BONUS = 0.15
WORD_BONUS = 0.05
WORD_BONUS_MAX = 0.15

_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = (
    "a an the is are was were be been my your our i me we you it its this that of to for in "
    "on at by with and or do does did can could would will please what where when how why "
    "which who hi hello there any some about from has have had"
)
_STOP = frozenset(_STOP_WORDS.split())
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Without a parameter value in it ("NW-482913"), a question runs an action only when it is about
# the customer's own things ("where is my order?") and is not a general question that an
# article answers ("can I still cancel my order?", "where can I track my order?").
NO_VALUE_EXTRA = 0.1
_PERSONAL = re.compile(r"\b(?:my|mine|our)\b", re.IGNORECASE)
_GENERAL = re.compile(
    r"\b(?:can|could|may)\s+(?:i|we|you)\b|\bhow\b|\bwhere\s+(?:can|do|should)\b|"
    r"\bwhat\s+(?:should|does|do|if|happens)\b|\b(?:do|does)\s+(?:i|you|it)\b|"
    r"\bis\s+(?:there|it)\b|\bwhy\b|\bwhat\s+now\b|\bif\b",
    re.IGNORECASE,
)


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP and len(w) > 1}


def example_lines(action: Any) -> list[str]:
    return [line.strip() for line in (action.examples or "").splitlines() if line.strip()]


# --- Parameters ---------------------------------------------------------------------------------


def properties(action: Any) -> dict[str, dict[str, Any]]:
    props = (action.parameters or {}).get("properties") or {}
    return {str(k): v for k, v in props.items() if isinstance(v, dict)}


def required(action: Any) -> list[str]:
    return [str(r) for r in (action.parameters or {}).get("required") or []]


def _search_pattern(pattern: str) -> re.Pattern[str] | None:
    """`pattern` made to find a value inside a sentence: anchors dropped, word edges kept."""
    body = pattern
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    try:
        return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)
    except re.error:
        return None


def _value_fits(schema: dict[str, Any], value: Any) -> bool:
    try:
        return not list(Draft202012Validator(schema).iter_errors(value))
    except SchemaError:
        return False


def extract_value(schema: dict[str, Any], text: str) -> Any | None:
    """One value for the parameter `schema` found in `text`, or None."""
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        finder = _search_pattern(pattern)
        if finder is None:
            return None
        for found in finder.finditer(text):
            for candidate in (found.group(0), found.group(0).upper(), found.group(0).lower()):
                if _value_fits(schema, candidate):
                    return candidate
        return None
    enum = schema.get("enum")
    if isinstance(enum, list):
        lowered = text.lower()
        for option in enum:
            if isinstance(option, str) and re.search(
                rf"(?<!\w){re.escape(option.lower())}(?!\w)", lowered
            ):
                return option
        return None
    if schema.get("format") == "email":
        found = _EMAIL.search(text)
        return found.group(0) if found else None
    return None


def extract_params(action: Any, text: str) -> dict[str, Any]:
    """Parameters of `action` found in `text` (identity-bound ones are never taken from it)."""
    bound = set((action.identity_bindings or {}).keys())
    found: dict[str, Any] = {}
    for name, schema in properties(action).items():
        if name in bound:
            continue
        value = extract_value(schema, text)
        if value is not None:
            found[name] = value
    return found


def fillable(action: Any) -> list[str]:
    """Parameters the customer gives (not bound to identity)."""
    bound = set((action.identity_bindings or {}).keys())
    return [n for n in properties(action) if n not in bound]


def missing(action: Any, params: dict[str, Any]) -> list[str]:
    """Required parameters the customer still has to give."""
    bound = set((action.identity_bindings or {}).keys())
    return [n for n in required(action) if n not in bound and n not in params]


def validation_errors(action: Any, params: dict[str, Any]) -> list[str]:
    try:
        validator = Draft202012Validator(action.parameters or {"type": "object"})
        return [e.message for e in validator.iter_errors(params)]
    except SchemaError as exc:
        return [f"the action's parameter schema is not valid: {exc.message}"]


def schema_problems(schema: Any) -> list[str]:
    """Why `schema` cannot be an action's parameters (empty when it can)."""
    if not isinstance(schema, dict):
        return ["The parameters must be a JSON Schema object."]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [f"Not a valid JSON Schema: {exc.message}"]
    if schema and schema.get("type", "object") != "object":
        return ['The parameters schema must have "type": "object".']
    problems = []
    for name, prop in (schema.get("properties") or {}).items():
        pattern = prop.get("pattern") if isinstance(prop, dict) else None
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"{name}: the pattern is not a regular expression ({exc}).")
    return problems


def label(action: Any, name: str) -> str:
    """How to name a parameter to the customer ("order number")."""
    schema = properties(action).get(name, {})
    title = schema.get("title")
    return str(title) if title else name.replace("_", " ")


def ask_text(action: Any, names: list[str]) -> str:
    """The question for missing parameters ("What is your order number?")."""
    labels = [label(action, n) for n in names]
    joined = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    hint = ""
    if len(names) == 1:
        example = properties(action).get(names[0], {}).get("examples")
        if isinstance(example, list) and example:
            hint = f" (for example {example[0]})"
    return f"What is your {joined}{hint}?"


# --- Identity -----------------------------------------------------------------------------------


class IdentityMissing(Exception):
    """The action needs a signed-in customer (or a claim their token lacks)."""


def identity_value(identity: dict[str, Any] | None, claim: str) -> Any | None:
    if not identity:
        return None
    if claim.startswith("claims."):
        value = (identity.get("claims") or {}).get(claim.split(".", 1)[1])
    else:
        value = identity.get(claim)
    if value in (None, "", []):
        return None
    return value


def bind_identity(action: Any, identity: dict[str, Any] | None) -> dict[str, Any]:
    """The identity-bound parameters from the customer's signed token."""
    bound: dict[str, Any] = {}
    for param, claim in (action.identity_bindings or {}).items():
        value = identity_value(identity, str(claim))
        if value is None:
            raise IdentityMissing(f"{param} needs the customer's {claim}")
        bound[str(param)] = value
    return bound


# --- Choosing -----------------------------------------------------------------------------------


@dataclass
class Scored:
    action: Any
    score: float
    cosine: float
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Choice:
    action: Any
    score: float
    params: dict[str, Any]
    missing: list[str]
    runner_up: float = 0.0


_vectors: dict[tuple[Any, str], np.ndarray] = {}


def _action_vectors(action: Any, encode: Encode) -> np.ndarray:
    texts = [action.description, *example_lines(action)]
    key = (action.pk, "\n".join(texts))
    if key not in _vectors:
        if len(_vectors) > 512:
            _vectors.clear()
        _vectors[key] = np.asarray(encode(texts))
    return _vectors[key]


def score_all(question: str, actions: Sequence[Any], encode: Encode | None) -> list[Scored]:
    """Every action scored for `question`, best first."""
    if not actions:
        return []
    asked = words(question)
    question_vector = np.asarray(encode([question]))[0] if encode is not None else None
    scored = []
    for action in actions:
        cosine = 0.0
        if question_vector is not None:
            cosine = float(np.max(_action_vectors(action, encode) @ question_vector))
        params = extract_params(action, question)
        shared = asked & set().union(*(words(e) for e in example_lines(action)), set())
        bonus = min(WORD_BONUS_MAX, WORD_BONUS * len(shared))
        if params:
            bonus += VALUE_BONUS
        scored.append(Scored(action, cosine + bonus, cosine, params))
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


def choose(
    question: str,
    actions: Sequence[Any],
    encode: Encode | None,
    *,
    threshold: float = MATCH_THRESHOLD,
    margin: float = MATCH_MARGIN,
) -> Choice | None:
    """The action `question` asks for, with the parameters found in it; None for none."""
    scored = score_all(question, actions, encode)
    if not scored or scored[0].score < threshold:
        return None
    best = scored[0]
    if not best.params and (
        best.score < threshold + NO_VALUE_EXTRA
        or not _PERSONAL.search(question)
        or _GENERAL.search(question)
    ):
        return None
    runner_up = scored[1].score if len(scored) > 1 else 0.0
    if runner_up and best.score - runner_up < margin:
        # Too close to call: a lookup is harmless, a change is never made on a guess (and it
        # would still need the customer's confirmation).
        close = [s for s in scored if best.score - s.score < margin]
        lookups = [s for s in close if not getattr(s.action, "changes_data", False)]
        if not lookups:
            return None
        best = lookups[0]
        runner_up = max((s.score for s in scored if s is not best), default=0.0)
    return Choice(
        action=best.action,
        score=round(best.score, 4),
        params=best.params,
        missing=missing(best.action, best.params),
        runner_up=round(runner_up, 4),
    )
