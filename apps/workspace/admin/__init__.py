"""The workspace's admin: conversation review (`review`) and what a tenant sets up for its
agents (`setup`). Importing both registers their ModelAdmins with the admin site."""

from apps.workspace.admin import review, setup

__all__ = ["review", "setup"]
