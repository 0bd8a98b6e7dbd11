"""Replaying a tenant's evaluation cases through the assistant (`manage.py evaluate_answers`).

Each case's question goes through the assistant's retrieval (knowledge plus curated answers)
and its answer prompt and model. A case passes when the answer cites one of the expected
sources (when any are given) and agrees with the expected answer: the cosine similarity of
their embeddings reaches `EVAL_MIN_SIMILARITY`, and, when a judge model is configured
(`EVAL_JUDGE_MODEL`, at `EVAL_JUDGE_BASE_URL` or else `LLM_BASE_URL`), the judge says so too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import openai
from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils import timezone

from apps.tenants.models import Tenant
from apps.workspace import selectors, suggestions
from apps.workspace.models import EvaluationCase

logger = logging.getLogger(__name__)


def setting(name: str, default: Any) -> Any:
    """A Django setting (see supportai/settings.py), or `default` when it is empty."""
    value = getattr(settings, name, None)
    return value if value not in (None, "") else default


JUDGE_PROMPT = """\
You grade a customer-support answer against the expected answer. Reply in JSON: \
{"verdict": "agree" or "disagree", "reason": "..."}. "agree" means the answer states the same \
facts as the expected answer without contradicting it; wording and length may differ."""

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["agree", "disagree"]},
        "reason": {"type": "string", "maxLength": 200},
    },
    "required": ["verdict", "reason"],
}


@dataclass
class CaseResult:
    case_id: str
    question: str
    answer: str
    mode: str
    cited: list[str]
    cites_expected: bool | None
    similarity: float
    judge: str | None
    agrees: bool


async def _judge(*, question: str, expected: str, answer: str) -> str | None:
    model = setting("EVAL_JUDGE_MODEL", "")
    if not model:
        return None
    client = openai.AsyncOpenAI(
        base_url=setting("EVAL_JUDGE_BASE_URL", settings.LLM_BASE_URL),
        api_key=setting("EVAL_JUDGE_API_KEY", settings.LLM_API_KEY),
        timeout=float(setting("EVAL_JUDGE_TIMEOUT", 60.0)),
        max_retries=1,
    )
    messages = [
        {"role": "system", "content": JUDGE_PROMPT},
        {
            "role": "user",
            "content": f"Question: {question}\n\nExpected answer: {expected}\n\nAnswer: {answer}",
        },
    ]
    try:
        response = await client.chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=120,
            temperature=0.0,
            response_format={"type": "json_object", "schema": JUDGE_SCHEMA},  # type: ignore[typeddict-item]
        )
        value = json.loads(response.choices[0].message.content or "{}")
    except (openai.OpenAIError, httpx.HTTPError, ValueError) as exc:
        logger.warning("judge failed: %r", exc)
        return "error"
    finally:
        await client.close()
    verdict = value.get("verdict") if isinstance(value, dict) else None
    return verdict if verdict in {"agree", "disagree"} else "error"


def _replay(case: EvaluationCase, tenant: Tenant, min_similarity: float) -> CaseResult:
    draft = async_to_sync(suggestions.grounded_answer)(
        tenant=tenant, language="", history=[], question=case.question, access_groups=None
    )
    answer = draft["content"]
    cited = [str(c.get("document_id")) for c in draft["citations"]]
    expected_ids = {str(i) for i in case.expected_source_ids or []}
    cites_expected = bool(expected_ids & set(cited)) if expected_ids else None
    similarity = 0.0
    if answer:
        similarity = selectors.cosine(
            selectors.embed(answer)[0], selectors.embed(case.expected_answer)[0]
        )
    judge = (
        async_to_sync(_judge)(question=case.question, expected=case.expected_answer, answer=answer)
        if answer
        else None
    )
    agrees = bool(answer) and similarity >= min_similarity and judge in (None, "agree")
    return CaseResult(
        case_id=str(case.public_id),
        question=case.question,
        answer=answer,
        mode=draft["mode"],
        cited=cited,
        cites_expected=cites_expected,
        similarity=round(similarity, 4),
        judge=judge,
        agrees=agrees,
    )


def evaluate_tenant(*, tenant: Tenant, min_similarity: float | None = None) -> dict[str, Any]:
    """Replay every evaluation case of `tenant`; store each result on its case; a summary."""
    threshold = (
        float(setting("EVAL_MIN_SIMILARITY", 0.7)) if min_similarity is None else min_similarity
    )
    results = []
    for case in EvaluationCase.objects.for_tenant(tenant).order_by("created_at"):
        result = _replay(case, tenant, threshold)
        case.last_result = {**asdict(result), "at": timezone.now().isoformat()}
        case.save(update_fields=["last_result", "updated_at"])
        results.append(result)
    with_sources = [r for r in results if r.cites_expected is not None]
    return {
        "tenant": tenant.slug,
        "cases": len(results),
        "cite_expected_sources": sum(1 for r in with_sources if r.cites_expected),
        "cases_with_expected_sources": len(with_sources),
        "agree": sum(1 for r in results if r.agrees),
        "min_similarity": threshold,
        "judge_model": setting("EVAL_JUDGE_MODEL", "") or None,
        "results": [asdict(r) for r in results],
    }
