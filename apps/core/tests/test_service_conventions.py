"""One convention for services: a write that acts on a loaded row takes the row alone.

A source, document, chunk, conversation or call carries its tenant (the edges load it through a
tenant-scoped query), so `source_delete(*, source)` like `message_post_system(*, conversation)`.
The tenant is an argument where nothing carries it yet: creating a row, or a lookup by id.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

# Keyword arguments that name a loaded tenant-owned row.
ROW_ARGUMENTS = frozenset(
    {"source", "document", "chunk", "conversation", "message", "contact", "inbox", "call"}
)
SERVICE_MODULES = [
    "apps.actions.selectors",
    "apps.actions.services",
    "apps.conversations.api_services",
    "apps.conversations.selectors",
    "apps.conversations.services",
    "apps.knowledge.services",
    "apps.knowledge.sync",
    "apps.workspace.selectors",
    "apps.workspace.services",
]


def _public_functions(module):
    for name, function in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(function):
            continue
        if function.__module__ == module.__name__:
            yield name, function


@pytest.mark.parametrize("module_name", SERVICE_MODULES)
def test_services_on_a_loaded_row_do_not_take_the_tenant_as_well(module_name):
    module = importlib.import_module(module_name)
    both = []
    for name, function in _public_functions(module):
        parameters = inspect.signature(function).parameters
        # A row that may be absent (None: start a new one) needs the tenant beside it.
        required_rows = [
            p for p in ROW_ARGUMENTS & set(parameters) if parameters[p].default is inspect._empty
        ]
        if "tenant" in parameters and required_rows:
            both.append(f"{name}(tenant, {', '.join(sorted(required_rows))})")
    assert both == []


def test_knowledge_writes_take_the_row():
    from apps.knowledge import services, sync

    for function, row in [
        (services.source_update, "source"),
        (services.source_request_sync, "source"),
        (services.source_delete, "source"),
        (services.document_delete, "document"),
        (services.chunk_delete, "chunk"),
        (sync.source_sync, "source"),
    ]:
        parameters = inspect.signature(function).parameters
        assert row in parameters
        assert "tenant" not in parameters, function.__name__
