"""Who a widget connection (websocket or HTTP) is, and the writes both transports share.

A widget authenticates with its public key, from a page whose Origin the tenant allows, and
optionally with a signed end-user token naming the customer and their access groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.conversations import selectors, services
from apps.conversations.models import Conversation, Message
from apps.core.errors import ApplicationError, PermissionDeniedError
from apps.tenants.selectors import widget_key_resolve
from apps.tenants.services import end_user_token_verify

MAX_CLIENT_ID = 64


def _refused(reason: str) -> PermissionDeniedError:
    """The widget may not do this: bad key, Origin, token, or someone else's conversation.

    The reason is for the logs; every transport shows the customer one refusal for all of them
    (websocket close 4403, HTTP 403 `forbidden`).
    """
    return PermissionDeniedError(reason, code="forbidden")


@dataclass
class Session:
    tenant: Any
    widget_key: Any
    claims: dict[str, Any] | None
    language: str
    conversation: Conversation | None = None
    access_groups: list[str] = field(default_factory=list)
    # The page the widget is on (routing rules match on it).
    page_url: str = ""

    @property
    def actor(self) -> str:
        """Who acts, as the audit of a confirmed action records it."""
        sub = (self.claims or {}).get("sub")
        return f"customer {sub}" if sub else "anonymous visitor"


def authorize(
    *,
    key: str,
    origin: str | None,
    token: str | None,
    conversation_id: str | None,
    lang: str,
    page: str = "",
) -> Session:
    """Check the widget key, the Origin, the end-user token and the conversation's owner."""
    widget_key = widget_key_resolve(key=key)
    if widget_key is None:
        raise _refused("unknown or inactive widget key")
    tenant = widget_key.tenant
    if not tenant.origin_allowed(origin):
        raise _refused(f"origin {origin!r} is not allowed for this widget key")
    claims = None
    if token:
        try:
            claims = end_user_token_verify(tenant=tenant, token=token)
        except ApplicationError as exc:
            raise _refused(exc.message) from exc
    session = Session(
        tenant=tenant,
        widget_key=widget_key,
        claims=claims,
        language=(lang or "")[:16],
        access_groups=list(claims.get("groups", [])) if claims else [],
        page_url=page[: services.MAX_PAGE_URL_LENGTH] if isinstance(page, str) else "",
    )
    if conversation_id:
        conversation = selectors.conversation_get(tenant=tenant, public_id=conversation_id)
        if conversation is None:
            raise _refused("no such conversation for this widget key")
        if conversation.contact_id is None and claims is not None:
            # The visitor signed in since: their anonymous conversation becomes theirs.
            services.conversation_identify(
                conversation=conversation, claims=claims, access_groups=session.access_groups
            )
        if conversation.contact_id is not None and (
            claims is None or conversation.contact.external_id != claims["sub"]
        ):
            raise _refused("the conversation belongs to another customer")
        session.conversation = conversation
    return session


def conversation_start_for(session: Session) -> Conversation:
    """A new conversation for the session's widget and customer."""
    contact = (
        services.contact_from_claims(tenant=session.tenant, claims=session.claims)
        if session.claims
        else None
    )
    return services.conversation_start(
        tenant=session.tenant,
        widget_key=session.widget_key,
        contact=contact,
        language=session.language,
        access_groups=session.access_groups,
        page_url=session.page_url,
        claims=session.claims,
    )


def team_for(session: Session) -> dict[str, Any] | None:
    """Whether the team is in, for the widget's header: the session's conversation, or the
    draft of the one it would start (same page, token and language, so the same rules)."""
    conversation = session.conversation or Conversation(
        tenant=session.tenant,
        widget_key=session.widget_key,
        language=session.language,
        access_groups=sorted({str(g) for g in session.access_groups}),
        context=services.routing_context(page_url=session.page_url, claims=session.claims),
    )
    return selectors.team_availability(conversation=conversation)


def customer_message_post(
    conversation: Conversation, text: str, client_id: str | None
) -> tuple[Message, bool, bool]:
    """Store the customer's message; returns (message, created, needs_an_answer)."""
    message, created = services.message_post_customer(
        conversation=conversation, text=text, client_id=client_id
    )
    conversation.refresh_from_db(fields=["status"])
    if created:
        return message, True, conversation.assistant_active
    # A re-sent message whose answer never started (the process died before) is answered now;
    # one that was answered, or is being answered, is not answered twice.
    later = selectors.messages_after(conversation=conversation, since=message.seq, limit=1)
    return message, False, not later and conversation.assistant_active
