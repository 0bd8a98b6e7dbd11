from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "apps.workspace"
    label = "workspace"
    verbose_name = "Agent workspace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The REST API (in the chat app, a layer below) asks the inbox grants who sees what.
        from apps.conversations.selectors import (
            conversation_visibility_register,
            team_availability_register,
        )
        from apps.conversations.services import conversation_router_register
        from apps.workspace.handoff import route, team_availability
        from apps.workspace.selectors import conversations_visible

        conversation_visibility_register(conversations_visible)
        team_availability_register(team_availability)
        # Routing rules and assignment run inside the chat app's start, message and handoff.
        conversation_router_register(route)
