"""Knowledge in the admin: sources (sync now, uploads), documents, chunks, indexes, and a page
to try retrieval. Every page is limited to the tenants the user belongs to."""

from apps.knowledge.admin import documents, sources

__all__ = ["documents", "sources"]
