"""The answer engine's account of each answer (strategy, answerability, what the groundedness
guard did) everywhere people and systems look: the REST API and its schema, `message.created`
events and webhooks, the agent console and the admin, analytics and /metrics. Tenant settings
(answer threshold, unanswerable action) in the admin.

Real PostgreSQL and Redis; the answers are stored through the conversations services the chat
path uses, with the engine's fields set on the row first (the engine itself is tested apart).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.analytics.models import DailyTenantStats
from apps.analytics.services import rollup_compute
from apps.analytics.tests.factories import at, move_conversation
from apps.conversations import selectors as chat_selectors
from apps.conversations import services as chat
from apps.conversations.models import Decision, Message, MessageStatus
from apps.core import realtime
from apps.core.observability import metrics
from apps.events.models import Event, EventType
from apps.integrations import services as integrations
from apps.integrations.tests.factories import WebhookSubscriptionFactory
from apps.tenants.models import Tenant, UnanswerableAction
from apps.workspace import selectors, services
from supportai.routing import websocket_urlpatterns

API = "/api/v1"
SITE_ORIGIN = b"http://127.0.0.1"
INVENTED = "A return label costs $3.50."
FELL_BACK = {
    "outcome": "fell_back",
    "reason": "sentence 2 states a number the sources do not have",
    "dropped": [{"sentence": INVENTED, "reason": "number 3.50 is not in the cited sources"}],
    "signals": {"support": 0.31, "internal": "calibration detail"},
}


def _answer(
    world,
    *,
    grounding=None,
    strategy="grounded",
    answerability=0.4242,
    content="Return labels cost $6.95 [1].",
    decision=Decision.EXTRACTIVE,
):
    """A customer question and the assistant's finished answer, with the engine's fields."""
    conversation = chat.conversation_start(tenant=world.tenant, widget_key=world.widget_key)
    chat.message_post_customer(conversation=conversation, text="How much is a return label?")
    message = chat.assistant_message_start(conversation=conversation, model="smollm2-test")
    message.strategy = strategy
    message.answerability = answerability
    message.grounding = FELL_BACK if grounding is None else grounding
    message.save(update_fields=["strategy", "answerability", "grounding"])
    message = chat.assistant_message_finish(
        message=message, content=content, status=MessageStatus.COMPLETE, decision=decision
    )
    return conversation, message


# --- Wire shapes ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_grounding_wire_keeps_outcome_reason_and_dropped_but_not_the_signals(tenant_a):
    _, message = _answer(tenant_a)
    wire = chat_selectors.answer_engine_wire(message)
    assert wire == {
        "strategy": "grounded",
        "answerability": 0.4242,
        "grounding": {
            "outcome": "fell_back",
            "reason": FELL_BACK["reason"],
            "dropped": FELL_BACK["dropped"],
        },
    }


@pytest.mark.django_db
def test_unknown_outcome_reads_other_and_customer_messages_have_no_grounding(tenant_a):
    conversation, message = _answer(tenant_a, grounding={"outcome": "surprise", "dropped": "x"})
    assert chat_selectors.grounding_wire(message) == {
        "outcome": "other",
        "reason": "",
        "dropped": [],
    }
    question = Message.objects.for_tenant(tenant_a.tenant).get(
        conversation=conversation, role="customer"
    )
    assert chat_selectors.answer_engine_wire(question) == {
        "strategy": "",
        "answerability": None,
        "grounding": None,
    }


@pytest.mark.django_db
def test_customer_wire_never_carries_what_the_guard_dropped(tenant_a):
    _, message = _answer(tenant_a)
    wire = chat_selectors.message_wire(message)
    assert "grounding" not in wire and INVENTED not in json.dumps(wire)


def test_metrics_outcomes_are_the_outcomes_the_serializers_know():
    assert set(chat_selectors.GROUNDING_OUTCOMES) == metrics.ANSWER_OUTCOMES


# --- REST API -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_messages_expose_strategy_answerability_and_grounding(tenant_a, api_key_for):
    conversation, answer = _answer(tenant_a)
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    response = client.get(f"{API}/conversations/{conversation.public_id}/messages/")
    assert response.status_code == 200, response.content
    question, body = response.json()["results"]
    assert body["id"] == answer.pk
    assert body["strategy"] == "grounded" and body["answerability"] == 0.4242
    assert body["grounding"] == {
        "outcome": "fell_back",
        "reason": FELL_BACK["reason"],
        "dropped": [{"sentence": INVENTED, "reason": "number 3.50 is not in the cited sources"}],
    }
    assert "signals" not in json.dumps(body)
    assert question["role"] == "customer"
    assert (question["strategy"], question["answerability"], question["grounding"]) == (
        "",
        None,
        None,
    )


@pytest.mark.django_db
def test_key_of_other_tenant_gets_none_of_the_answer_details(tenant_a, tenant_b, api_key_for):
    conversation, _ = _answer(tenant_a)
    client_b = api_key_for(tenant_b.tenant, scopes=["admin"])
    response = client_b.get(f"{API}/conversations/{conversation.public_id}/messages/")
    assert response.status_code == 404
    assert INVENTED not in response.content.decode()
    listing = client_b.get(f"{API}/conversations/")
    assert listing.status_code == 200 and listing.json()["results"] == []


@pytest.mark.django_db
def test_schema_describes_the_answer_fields(api_key_for, tenant_a):
    client = api_key_for(tenant_a.tenant, scopes=["conversations:read"])
    schema = client.get(f"{API}/schema/?format=json").json()
    message = schema["components"]["schemas"]["Message"]["properties"]
    assert {"strategy", "answerability", "grounding"} <= set(message)
    grounding = schema["components"]["schemas"]["Grounding"]["properties"]
    assert {"outcome", "reason", "dropped"} == set(grounding)
    assert "fell_back" in json.dumps(schema["components"]["schemas"])


# --- Events and webhooks --------------------------------------------------------------------------


@pytest.mark.django_db
def test_event_payload_is_the_old_shape_plus_the_answer_fields(tenant_a):
    _, message = _answer(tenant_a)
    payload = chat_selectors.message_event_payload(message)
    old_keys = {
        "conversation_id",
        "message_id",
        "role",
        "content",
        "status",
        "citations",
        "decision",
        "created_at",
    }
    assert set(payload) == old_keys | {"strategy", "answerability", "grounding"}
    assert payload["grounding"]["outcome"] == "fell_back"
    assert payload["answerability"] == 0.4242 and payload["strategy"] == "grounded"


@pytest.mark.django_db
def test_message_created_webhook_carries_strategy_answerability_and_grounding(
    tenant_a, http_receiver, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    subscription = WebhookSubscriptionFactory(
        tenant=tenant_a.tenant, url=http_receiver.url, event_types=["message.created"]
    )
    _, message = _answer(tenant_a)
    event = (
        Event.objects.for_tenant(tenant_a.tenant)
        .filter(type=EventType.MESSAGE_CREATED, payload__message_id=message.pk)
        .get()
    )
    (delivery,) = integrations.webhook_deliveries_create_for_event(event=event)
    assert delivery.subscription_id == subscription.pk
    integrations.webhook_delivery_attempt(delivery_id=delivery.pk)

    (request,) = http_receiver.wait_for(1)
    data = request.json()["data"]
    assert data["message_id"] == message.pk and data["role"] == "assistant"
    assert data["strategy"] == "grounded" and data["answerability"] == 0.4242
    assert data["grounding"]["outcome"] == "fell_back"
    assert data["grounding"]["dropped"][0]["sentence"] == INVENTED


# --- Agent console --------------------------------------------------------------------------------


def _grant_default(world, user):
    services.inbox_grant(inbox=selectors.inbox_default(tenant=world.tenant), agent=user)


def _console_url(conversation, slug=None):
    return reverse(
        "workspace:conversation",
        kwargs={
            "slug": slug or conversation.tenant.slug,
            "conversation_id": conversation.public_id,
        },
    )


@pytest.mark.django_db
def test_console_transcript_shows_the_answer_engine_fields(tenant_a, tenant_b):
    conversation, answer = _answer(tenant_a)
    _grant_default(tenant_a, tenant_a.agent)
    client = Client()
    client.force_login(tenant_a.agent)
    body = client.get(_console_url(conversation)).json()
    (assistant,) = [m for m in body["messages"] if m["role"] == "assistant"]
    assert assistant["id"] == answer.seq
    assert assistant["strategy"] == "grounded" and assistant["answerability"] == 0.4242
    assert assistant["grounding"]["dropped"][0]["sentence"] == INVENTED
    # The page's script renders them (strategy, score, what was dropped and why).
    page = client.get(f"/console/{tenant_a.tenant.slug}/").content.decode()
    assert "renderAnswerEngine" in page and "kept from the customer" in page

    other = Client()
    other.force_login(tenant_b.owner)
    response = other.get(_console_url(conversation))
    assert response.status_code == 404 and INVENTED not in response.content.decode()


async def _console_socket(user, slug):
    client = await sync_to_async(Client)()
    await sync_to_async(client.force_login)(user)
    headers = [
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        (b"origin", SITE_ORIGIN),
    ]
    return WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/console/?tenant={slug}", headers=headers
    )


@pytest.mark.django_db(transaction=True)
async def test_console_socket_gives_agents_the_answer_details_live(tenant_a):
    conversation, answer = await sync_to_async(_answer)(tenant_a)
    await sync_to_async(_grant_default)(tenant_a, tenant_a.agent)
    socket = await _console_socket(tenant_a.agent, tenant_a.tenant.slug)
    connected, _ = await socket.connect(timeout=10)
    assert connected
    assert (await socket.receive_json_from(timeout=10))["type"] == "ready"
    await socket.send_json_to({"type": "watch", "conversation_id": str(conversation.public_id)})
    assert (await socket.receive_json_from(timeout=10))["type"] == "watching"

    # What the chat path sends the conversation's group when an answer finishes.
    customer_wire = await sync_to_async(chat_selectors.message_wire)(answer)
    await realtime.chat_event_send_async(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.pk,
        event={"type": "message_done", "message": customer_wire},
    )
    frame = await socket.receive_json_from(timeout=10)
    assert frame["type"] == "chat" and frame["frame"]["type"] == "message_done"
    forwarded = frame["frame"]["message"]
    assert forwarded["id"] == answer.seq and forwarded["content"] == answer.content
    assert forwarded["strategy"] == "grounded" and forwarded["answerability"] == 0.4242
    assert forwarded["grounding"]["outcome"] == "fell_back"
    assert forwarded["grounding"]["dropped"][0]["reason"].startswith("number 3.50")

    # A frame naming a message of another conversation is forwarded as it came, not looked up.
    _, stranger = await sync_to_async(_answer)(tenant_a)
    await realtime.chat_event_send_async(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.pk,
        event={"type": "message_done", "message": {**customer_wire, "id": stranger.pk}},
    )
    frame = await socket.receive_json_from(timeout=10)
    assert "grounding" not in frame["frame"]["message"]
    await socket.disconnect()


# --- Admin ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_transcript_shows_strategy_answerability_and_dropped_sentences(client, tenant_a):
    conversation, _ = _answer(
        tenant_a,
        grounding={
            **FELL_BACK,
            "dropped": [
                *FELL_BACK["dropped"],
                {"sentence": "<script>alert(1)</script>", "reason": "markup"},
            ],
        },
    )
    _grant_default(tenant_a, tenant_a.agent)
    client.force_login(tenant_a.agent)
    page = client.get(
        reverse("admin:conversations_conversation_change", args=[conversation.pk])
    ).content.decode()
    for expected in (
        'data-outcome="fell_back"',
        "Grounded (the model, checked sentence by sentence)",
        "0.42",
        FELL_BACK["reason"],
        INVENTED,
        "number 3.50 is not in the cited sources",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
    ):
        assert expected in page, expected
    assert "<script>alert(1)</script>" not in page


def _tenant_form(tenant: Tenant, **changes) -> dict:
    data = {
        "name": tenant.name,
        "allowed_origins": json.dumps(tenant.allowed_origins),
        "settings": json.dumps(tenant.settings),
        "answer_threshold": "" if tenant.answer_threshold is None else tenant.answer_threshold,
        "unanswerable_action": tenant.unanswerable_action,
        "default_language": tenant.default_language,
    }
    # The inlines' management forms (no rows changed).
    for prefix in ("widget_keys", "memberships"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    data.update(changes)
    return data


def _inline_prefixes(response) -> list[str]:
    return [formset.formset.prefix for formset in response.context["inline_admin_formsets"]]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "admin"])
def test_owners_and_admins_set_the_answer_threshold_and_unanswerable_action(client, tenant_a, who):
    tenant = tenant_a.tenant
    client.force_login(getattr(tenant_a, who))
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="answer_threshold"' in html and 'name="unanswerable_action"' in html
    data = _tenant_form(tenant, answer_threshold="0.55", unanswerable_action="handoff")
    for prefix in _inline_prefixes(page):
        data.setdefault(f"{prefix}-TOTAL_FORMS", "0")
        data.setdefault(f"{prefix}-INITIAL_FORMS", "0")
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant.refresh_from_db()
    assert tenant.answer_threshold == 0.55
    assert tenant.unanswerable_action == UnanswerableAction.HANDOFF


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"answer_threshold": "1.5"}, "answer_threshold", "less than or equal to 1"),
        ({"answer_threshold": "-0.1"}, "answer_threshold", "greater than or equal to 0"),
        ({"answer_threshold": "high"}, "answer_threshold", "Enter a number"),
        ({"unanswerable_action": "shrug"}, "unanswerable_action", "Select a valid choice"),
    ],
)
def test_tenant_form_refuses_bad_threshold_or_action_with_a_readable_message(
    client, tenant_a, changes, field, message
):
    tenant = tenant_a.tenant
    client.force_login(tenant_a.owner)
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    page = client.get(url)
    data = _tenant_form(tenant, **changes)
    for prefix in _inline_prefixes(page):
        data.setdefault(f"{prefix}-TOTAL_FORMS", "0")
        data.setdefault(f"{prefix}-INITIAL_FORMS", "0")
    response = client.post(url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field]), errors
    tenant.refresh_from_db()
    assert tenant.answer_threshold is None
    assert tenant.unanswerable_action == UnanswerableAction.OFFER


@pytest.mark.django_db
def test_agents_and_other_tenants_cannot_change_the_answer_settings(client, tenant_a, tenant_b):
    tenant = tenant_a.tenant
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    client.force_login(tenant_a.agent)
    page = client.get(url)
    assert page.status_code == 200  # agents see their tenant, read-only
    assert 'name="answer_threshold"' not in page.content.decode()
    response = client.post(url, _tenant_form(tenant, answer_threshold="0.1"))
    assert response.status_code == 403
    for who in ("owner", "admin"):
        client.force_login(getattr(tenant_b, who))
        response = client.post(url, _tenant_form(tenant, answer_threshold="0.1"))
        assert response.status_code in (302, 404)
        if response.status_code == 302:
            assert "/admin/" in response["Location"]
    tenant.refresh_from_db()
    assert tenant.answer_threshold is None


# --- Analytics ------------------------------------------------------------------------------------

DAY = dt.date(2026, 3, 10)


def _outcome_day(world, outcomes: list[str | None]) -> None:
    for outcome in outcomes:
        conversation, _ = _answer(world, grounding={"outcome": outcome} if outcome else {})
        move_conversation(conversation, at(DAY, 10))


@pytest.mark.django_db
def test_rollup_counts_grounded_fell_back_and_declined_answers(tenant_a, tenant_b):
    # 8 answers: 3 grounded, 2 fell back, 1 declined + 1 chitchat (declined), 1 with no outcome.
    _outcome_day(
        tenant_a,
        [
            "grounded",
            "grounded",
            "grounded",
            "fell_back",
            "fell_back",
            "declined",
            "chitchat",
            None,
        ],
    )
    _outcome_day(tenant_b, ["declined"])
    stats = rollup_compute(tenant=tenant_a.tenant, day=DAY)
    assert stats.answers == 8
    assert (stats.answers_grounded, stats.answers_fell_back, stats.answers_declined) == (3, 2, 2)
    assert stats.grounded_rate == pytest.approx(3 / 8)
    assert stats.fell_back_rate == pytest.approx(2 / 8)
    assert stats.declined_rate == pytest.approx(2 / 8)
    other = rollup_compute(tenant=tenant_b.tenant, day=DAY)
    assert (other.answers, other.answers_declined, other.grounded_rate) == (1, 1, 0.0)
    empty = rollup_compute(tenant=tenant_a.tenant, day=DAY - dt.timedelta(days=1))
    assert empty.grounded_rate is None and empty.declined_rate is None


def _stats(world, day, **numbers):
    return DailyTenantStats.objects.create(
        tenant=world.tenant, day=day, computed_at=timezone.now(), **numbers
    )


@pytest.mark.django_db
def test_dashboard_shows_each_tenants_own_answer_outcome_rates(client, tenant_a, tenant_b):
    today = timezone.localdate()
    # Two days: 10 + 30 answers; grounded 6 + 12 = 18 (45 %), fell back 1 + 3 = 4 (10 %),
    # declined 3 + 3 = 6 (15 %): rates weighted by answers, not averages of daily rates.
    for offset, answers, grounded, fell_back, declined in ((2, 10, 6, 1, 3), (1, 30, 12, 3, 3)):
        _stats(
            tenant_a,
            today - dt.timedelta(days=offset),
            answers=answers,
            answers_grounded=grounded,
            answers_fell_back=fell_back,
            answers_declined=declined,
            grounded_rate=grounded / answers,
            fell_back_rate=fell_back / answers,
            declined_rate=declined / answers,
        )
    _stats(
        tenant_b,
        today - dt.timedelta(days=1),
        answers=4,
        answers_grounded=1,
        answers_fell_back=1,
        answers_declined=1,
        grounded_rate=0.25,
        fell_back_rate=0.25,
        declined_rate=0.25,
    )
    client.force_login(tenant_a.owner)
    page = client.get("/dashboard/?days=7").content.decode()
    assert '<dd data-metric="grounded_rate">45.0%</dd>' in page
    assert '<dd data-metric="fell_back_rate">10.0%</dd>' in page
    assert '<dd data-metric="declined_rate">15.0%</dd>' in page
    assert "Answers: grounded, fell back to extractive, declined" in page
    assert "25.0%" not in page

    client.force_login(tenant_b.owner)
    page = client.get("/dashboard/?days=7").content.decode()
    assert '<dd data-metric="grounded_rate">25.0%</dd>' in page
    assert client.get("/dashboard/?tenant=acme").status_code == 404
    client.force_login(tenant_a.agent)
    assert client.get("/dashboard/").status_code == 403


@pytest.mark.django_db
def test_analytics_api_sums_the_outcome_counts(tenant_a, tenant_b, api_key_for):
    today = timezone.localdate()
    _stats(tenant_a, today, answers=8, answers_grounded=4, answers_fell_back=2, answers_declined=1)
    _stats(tenant_b, today, answers=5, answers_grounded=5)
    client = api_key_for(tenant_a.tenant, scopes=["analytics:read"])
    totals = client.get(f"{API}/analytics/summary/").json()["totals"]
    assert (
        totals["answers_grounded"],
        totals["answers_fell_back"],
        totals["answers_declined"],
    ) == (
        4,
        2,
        1,
    )
    assert totals["grounded_rate"] == 0.5 and totals["fell_back_rate"] == 0.25
    assert totals["declined_rate"] == 0.125


# --- /metrics -------------------------------------------------------------------------------------

TOKEN = "metrics-token-for-tests-0123456789"


def _count(outcome: str) -> float:
    return REGISTRY.get_sample_value("supportai_assistant_answers_total", {"outcome": outcome}) or 0


def _answerability_count() -> float:
    return REGISTRY.get_sample_value("supportai_answerability_count", {}) or 0


@pytest.mark.django_db
def test_metrics_count_answers_by_grounding_outcome(client, settings, tenant_a):
    settings.METRICS_TOKEN = TOKEN
    before = {o: _count(o) for o in ("grounded", "fell_back", "declined", "other")}
    scored_before = _answerability_count()
    for grounding, answerability in (
        ({"outcome": "grounded"}, 0.9),
        ({"outcome": "grounded"}, 0.8),
        (FELL_BACK, 0.4),
        ({"outcome": "declined"}, 0.1),
        ({"outcome": "tenant-42-made-up"}, None),
        ({}, None),
    ):
        _, message = _answer(tenant_a, grounding=grounding, answerability=answerability)
        metrics.observe_answer_message(message)
    assert _count("grounded") - before["grounded"] == 2
    assert _count("fell_back") - before["fell_back"] == 1
    assert _count("declined") - before["declined"] == 1
    assert _count("other") - before["other"] == 2
    assert _answerability_count() - scored_before == 4

    body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert 'supportai_assistant_answers_total{outcome="grounded"}' in body
    assert 'supportai_assistant_answers_total{outcome="fell_back"}' in body
    assert "tenant-42-made-up" not in body
    assert "supportai_answerability_bucket" in body


# --- In a real browser ----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_console_in_chromium_shows_strategy_score_and_what_was_dropped(
    live_server_process, tenant_a
):
    from playwright.sync_api import expect, sync_playwright

    from tests.support.browser import chromium_path, session_for

    markup = "<img src=x onerror=\"document.body.dataset.pwned='1'\">"
    grounding = {
        **FELL_BACK,
        "dropped": [*FELL_BACK["dropped"], {"sentence": markup, "reason": "markup"}],
    }
    conversation, _ = _answer(tenant_a, grounding=grounding)
    chat.handoff_request(conversation=conversation, reason="customer_request")
    _grant_default(tenant_a, tenant_a.agent)
    session_id = session_for(tenant_a.agent)
    server = live_server_process

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([{"name": "sessionid", "value": session_id, "url": server.url}])
            page = context.new_page()
            page.goto(f"{server.url}/console/acme/")
            page.locator('[data-testid="queue-item"]').click()
            engine = page.locator('[data-testid="answer-engine"]')
            expect(engine).to_have_count(1, timeout=15000)
            expect(engine).to_have_attribute("data-outcome", "fell_back")
            expect(engine).to_contain_text("Strategy: grounded")
            expect(engine).to_contain_text("answerability 0.42")
            expect(engine).to_contain_text("fell back to the extractive answer")
            expect(page.locator('[data-testid="grounding-reason"]')).to_contain_text(
                FELL_BACK["reason"]
            )
            engine.locator("summary").click()
            dropped = page.locator('[data-testid="dropped-sentence"]')
            expect(dropped).to_have_count(2)
            expect(dropped.nth(0)).to_contain_text(INVENTED)
            expect(dropped.nth(0)).to_contain_text("number 3.50 is not in the cited sources")
            expect(dropped.nth(1)).to_contain_text(markup)  # shown as text, never as markup
            assert page.evaluate("document.body.dataset.pwned") is None
        except BaseException:
            print(server.log()[-6000:])
            raise
        finally:
            browser.close()
