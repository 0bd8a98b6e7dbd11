"""Test support shared by app tests (`apps/<app>/tests/`) and cross-cutting tests (`tests/`).

- `fixtures`: a pytest plugin (registered in the root `conftest.py`, so every test has its
  fixtures): real Celery worker and web server processes, an HTTP receiver, API clients.
- `chat`: helpers for the chat websocket and the `chat_settings` fixture.
- `knowledge`: `ingest_text` and the `knowledge_store` fixture.
- `llm`: the real local LLM server (`llm_server`, `llm_settings`, `LLMServer`).
- `api`: the REST API's error-body check and one object of every resource for a tenant.

Fixtures outside `fixtures` are imported into the test module that needs them.
"""
