"""Property-based fuzzing of the whole REST API with schemathesis, against a live server.

uvicorn serves the app on the test database; the OpenAPI schema it serves drives the requests.
Each operation gets requests generated from its schema (random ids) and, where its URL names an
object, requests aimed at a seeded object of the tenant, so detail endpoints are exercised past
the 404. Every response must pass schemathesis' `not_a_server_error`,
`status_code_conformance`, `content_type_conformance` and `response_schema_conformance`.

Generation is derandomized (fixed seed per operation) and shrinking is off, so a run is
reproducible and bounded in time; the requests actually sent are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.fixtures import _free_port, _stop, start_uvicorn, subprocess_env, wait_until

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MIN_REQUESTS = 1_000
# Examples per operation: generated from the schema, and aimed at a seeded object.
GENERATED_EXAMPLES = 40
SEEDED_EXAMPLES = 10
# These run the answer flow (retrieval, then the language model, which is unreachable here
# so the assistant falls back to excerpts) or embed the query: fewer examples keep the run short.
SLOW_OPERATIONS = {"POST /api/v1/ask/": 8, "POST /api/v1/search/": 12}


@dataclass
class FuzzTarget:
    url: str
    key: str
    ids: dict[str, str]
    log: Any
    sent: int = 0
    failures: list[str] = field(default_factory=list)


def _seed(tenant_a) -> tuple[str, dict[str, str]]:
    """Objects of every kind in tenant A, and an admin key; returns (key, ids by kind)."""
    from apps.analytics.services import rollup_compute
    from apps.conversations import feedback
    from apps.conversations import services as chat
    from apps.conversations.models import Contact
    from apps.integrations.services import api_key_create, webhook_subscription_create
    from apps.knowledge.models import Document, Source
    from apps.knowledge.services import source_create

    tenant = tenant_a.tenant
    contact = Contact.objects.create(tenant=tenant, external_id="crm-1", email="c@example.com")
    conversation = chat.conversation_start(tenant=tenant, contact=contact)
    chat.message_post_customer(conversation=conversation, text="Where is my order?")
    answer = chat.assistant_message_start(conversation=conversation)
    # The answer engine's fields, so responses are checked with them filled in, not just null.
    answer.strategy, answer.answerability = "grounded", 0.83
    answer.grounding = {
        "outcome": "fell_back",
        "reason": "a number is not in the sources",
        "dropped": [{"sentence": "It costs $3.50.", "reason": "number not in the sources"}],
    }
    answer.save(update_fields=["strategy", "answerability", "grounding"])
    chat.assistant_message_finish(
        message=answer, content="On its way [1].", status="complete", decision="answer"
    )
    feedback.feedback_record(conversation=conversation, kind="thumbs", rating="up", message=answer)
    for n in range(3):
        other = chat.conversation_start(tenant=tenant, channel="api")
        chat.message_post_customer(conversation=other, text=f"Question {n}")
    source = source_create(
        tenant=tenant, kind=Source.Kind.TEXT, name="Returns", text="Returns: 30 days.", sync=False
    )
    document = Document.objects.create(tenant=tenant, source=source, key="text", title="Returns")
    subscription = webhook_subscription_create(
        tenant=tenant, url="http://127.0.0.1:9/hooks", event_types=["*"]
    )
    spare_key, _ = api_key_create(tenant=tenant, name="spare", scopes=["contacts:read"])
    _, plaintext = api_key_create(tenant=tenant, name="fuzz", scopes=["admin"])
    from django.utils import timezone

    rollup_compute(tenant=tenant, day=timezone.localdate())
    from apps.events.models import Event

    event = Event.objects.for_tenant(tenant).first()
    from apps.workspace.inbox_settings import routing_rule_create
    from apps.workspace.selectors import inbox_default

    inbox = inbox_default(tenant=tenant)
    rule = routing_rule_create(tenant=tenant, name="Pricing", url_contains="/pricing", inbox=inbox)
    from apps.actions import services as actions
    from apps.actions.demo_orders import action_definitions
    from apps.actions.models import CallStatus

    action = actions.action_create(
        tenant=tenant, **action_definitions("https://orders.example.com")[0]
    )
    call = actions.call_open(
        action=action,
        conversation=conversation,
        message=None,
        status=CallStatus.REFUSED,
        params={"order_number": "NW-482913"},
    )
    ids = {
        "/api/v1/api-keys/": str(spare_key.public_id),
        "/api/v1/conversations/": str(conversation.public_id),
        "/api/v1/contacts/by-external-id/": contact.external_id,
        "/api/v1/contacts/": str(contact.public_id),
        "/api/v1/knowledge/sources/": str(source.public_id),
        "/api/v1/knowledge/documents/": str(document.public_id),
        "/api/v1/webhooks/subscriptions/": str(subscription.public_id),
        "/api/v1/events/": str(event.public_id),
        "/api/v1/inboxes/": str(inbox.public_id),
        "/api/v1/routing-rules/": str(rule.public_id),
        "/api/v1/actions/": str(action.public_id),
        "/api/v1/action-calls/": str(call.public_id),
    }
    return plaintext, ids


@pytest.fixture
def fuzz_target(transactional_db, tenant_a, tmp_path, webhooks_to_loopback):
    key, ids = _seed(tenant_a)
    port = _free_port()
    env = subprocess_env(
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Thousands of requests a minute from one key: the rate limit is tested elsewhere.
        API_RATE_LIMIT_PER_MINUTE="1000000",
        # Nothing listens there: the assistant answers with excerpts, quickly.
        LLM_BASE_URL="http://127.0.0.1:9/v1",
        KNOWLEDGE_UPLOAD_MAX_BYTES="65536",
    )
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        process = start_uvicorn(port=port, env=env, log=log)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"uvicorn exited. Its log:\n{log_path.read_text()[-4000:]}")
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(answers, timeout=60, message="uvicorn did not answer /healthz in 60 s")
        yield FuzzTarget(url=url, key=key, ids=ids, log=lambda: log_path.read_text())
    finally:
        _stop(process, "uvicorn")


def _seeded_path_parameters(target: FuzzTarget, path: str) -> dict[str, str] | None:
    """Path parameters naming a seeded object for `path`, or None if it names none."""
    for prefix, object_id in target.ids.items():
        if not path.startswith(prefix) or path == prefix:
            continue
        name = path[len(prefix) :].split("}", 1)[0].lstrip("{")
        if path.startswith("/api/v1/contacts/{contact_id}"):
            return {"contact_id": target.ids["/api/v1/contacts/"]}
        if path.startswith("/api/v1/conversations/{conversation_id}"):
            return {"conversation_id": target.ids["/api/v1/conversations/"]}
        return {name: object_id}
    return None


def _fuzz(target: FuzzTarget, operation: Any, session: requests.Session, **kwargs: Any) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    examples = kwargs.pop("max_examples")

    @given(case=operation.as_strategy(**kwargs))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    def run(case: Any) -> None:
        target.sent += 1
        try:
            case.call_and_validate(base_url=target.url, session=session, checks=CHECKS)
        except (FailureGroup, requests.RequestException) as exc:  # collected: one run reports all
            target.failures.append(f"{label}: {exc}"[:3000])

    run()


# Every operation of the API is fuzzed in this one test, so its run time grows with the API
# (about 3.5 minutes for ~60 operations on two shared cores): more than the suite's default.
@pytest.mark.timeout(600)
def test_api_conforms_to_its_schema_under_fuzzing(fuzz_target):
    headers = {"Authorization": f"Bearer {fuzz_target.key}"}
    schema = schemathesis.openapi.from_url(f"{fuzz_target.url}/api/v1/schema/", headers=headers)
    session = requests.Session()
    session.headers.update(headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40, [f"{o.method} {o.path}" for o in operations]

    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        generated = SLOW_OPERATIONS.get(label, GENERATED_EXAMPLES)
        _fuzz(fuzz_target, operation, session, max_examples=generated)
        path_parameters = _seeded_path_parameters(fuzz_target, operation.path)
        if path_parameters:
            _fuzz(
                fuzz_target,
                operation,
                session,
                max_examples=SEEDED_EXAMPLES,
                path_parameters=path_parameters,
            )

    server_log = fuzz_target.log()
    print(f"schemathesis: {fuzz_target.sent} requests over {len(operations)} operations")
    assert not fuzz_target.failures, (
        f"{len(fuzz_target.failures)} failing request(s) of {fuzz_target.sent}:\n"
        + "\n\n".join(fuzz_target.failures[:15])
        + f"\n\nserver log:\n{server_log[-4000:]}"
    )
    assert fuzz_target.sent >= MIN_REQUESTS, fuzz_target.sent
    assert "Internal Server Error" not in server_log
