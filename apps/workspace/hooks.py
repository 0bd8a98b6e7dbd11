"""What the workspace plugs into the layers below it, connected once from
`WorkspaceConfig.ready()`: those layers call it without importing the workspace.

- conversations: who sees which conversation (inbox grants), whether a team is available, and
  the routing rules and assignment that run in the chat app's start, message and handoff;
- assistant: the best matching curated answer goes first in retrieval;
- tenants: every new tenant gets its default inbox.
"""

from __future__ import annotations

from apps.assistant.retrieval import sources_ranker_register
from apps.conversations.selectors import (
    conversation_visibility_register,
    team_availability_register,
)
from apps.conversations.services import conversation_router_register
from apps.tenants.services import tenant_setup_register
from apps.workspace.handoff import route, team_availability
from apps.workspace.selectors import conversations_visible, with_curated_first
from apps.workspace.services import inbox_default_ensure


def connect() -> None:
    conversation_visibility_register(conversations_visible)
    team_availability_register(team_availability)
    conversation_router_register(route)
    sources_ranker_register(with_curated_first)
    tenant_setup_register(inbox_default_ensure)
