"""Celery entry points, queue routing and the beat schedule. No domain logic lives here."""
