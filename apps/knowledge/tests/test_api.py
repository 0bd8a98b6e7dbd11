"""The knowledge API: sources (text, URL, upload), documents, search; validation and
idempotency. Isolation, scopes and dead keys for every endpoint: tests/test_api_isolation.py.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.knowledge.models import Document, Source
from tests.support.api import API, RETURNS, assert_error
from tests.support.knowledge import knowledge_store  # noqa: F401

pytestmark = pytest.mark.usefixtures("fresh_cache", "knowledge_store")


def test_text_source_create_list_sync_and_delete(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write", "knowledge:read"])
    body = {"kind": "text", "name": "Returns", "text": RETURNS, "access_groups": ["vip"]}
    response = client.post(f"{API}/knowledge/sources/", body, format="json")
    assert response.status_code == 201, response.content
    source = response.json()
    assert source["status"] == "queued" and source["access_groups"] == ["vip"]
    assert [s["id"] for s in client.get(f"{API}/knowledge/sources/?kind=text").json()["results"]]
    assert client.get(f"{API}/knowledge/sources/?kind=url").json()["results"] == []
    url = f"{API}/knowledge/sources/{source['id']}/"
    assert client.post(f"{url}sync/").status_code == 202
    assert client.delete(url).status_code == 204
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


def test_url_and_upload_sources(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    response = client.post(
        f"{API}/knowledge/sources/",
        {"kind": "url", "name": "Help", "url": "https://help.example.com/returns"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["kind"] == "url"
    upload = SimpleUploadedFile("faq.md", RETURNS.encode(), content_type="text/markdown")
    response = client.post(
        f"{API}/knowledge/sources/", {"name": "FAQ", "upload": upload}, format="multipart"
    )
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "upload" and response.json()["filename"] == "faq.md"


def test_documents_list_filter_and_delete(tenant_a, resources_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write", "knowledge:read"])
    source_id = resources_a["source"].public_id
    listed = client.get(f"{API}/knowledge/documents/?source={source_id}").json()["results"]
    assert [d["id"] for d in listed] == [str(resources_a["document"].public_id)]
    assert listed[0]["source_id"] == str(source_id)
    assert client.delete(f"{API}/knowledge/documents/{listed[0]['id']}/").status_code == 204
    assert not Document.objects.for_tenant(tenant_a.tenant).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "text", "name": "T"},
        {"kind": "text", "name": "T", "text": "   "},
        {"kind": "url", "name": "U", "url": "ftp://example.com/x"},
        {"kind": "url", "name": "U", "url": "javascript:alert(1)"},
        {"kind": "sitemap", "name": "S"},
        {"kind": "upload", "name": "F"},
        {"kind": "text", "name": "", "text": "x"},
        {"kind": "text", "name": "T", "text": "x", "max_pages": 0},
        {"kind": "text", "name": "T", "text": "x", "access_groups": ["*"]},
        {"kind": "text", "name": "T", "text": "x", "access_groups": "vip"},
    ],
)
def test_source_validation_errors(tenant_a, api_key_for, body):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    assert_error(client.post(f"{API}/knowledge/sources/", body, format="json"), 400)
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("empty.md", b"", "text/markdown"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "image/png"),
        ("big.txt", b"a" * 3000, "text/plain"),
    ],
)
def test_upload_validation_uses_the_pipeline_limits(
    tenant_a, api_key_for, settings, name, data, content_type
):
    settings.KNOWLEDGE_UPLOAD_MAX_BYTES = 2048
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    response = client.post(
        f"{API}/knowledge/sources/", {"name": "F", "upload": upload}, format="multipart"
    )
    assert_error(response, 400)
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


def test_repeated_source_post_with_idempotency_key_creates_one(tenant_a, api_key_for):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:write"])
    body = {"kind": "text", "name": "Returns", "text": RETURNS}
    for _ in range(2):
        response = client.post(
            f"{API}/knowledge/sources/", body, format="json", HTTP_IDEMPOTENCY_KEY="src-1"
        )
        assert response.status_code == 201
    assert response["Idempotent-Replayed"] == "true"
    assert Source.objects.for_tenant(tenant_a.tenant).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "x", "limit": 0},
        {"query": "x", "limit": 51},
        {"query": "x", "mode": "magic"},
        {"query": "x", "access_groups": "vip"},
        {"limit": 3},
    ],
)
def test_search_validation_errors(tenant_a, api_key_for, body):
    client = api_key_for(tenant_a.tenant, scopes=["knowledge:read"])
    assert_error(client.post(f"{API}/search/", body, format="json"), 400, "invalid")
