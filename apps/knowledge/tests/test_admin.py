"""Knowledge admin pages: each tenant sees and changes only its own sources, documents, chunks."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.knowledge.models import Chunk, Document, Source
from tests.support.knowledge import ingest_text, knowledge_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_store")]

SECRET = "The vault combination for the Tucson warehouse is 31-17-42."
INLINE_MANAGEMENT = {
    "documents-TOTAL_FORMS": "0",
    "documents-INITIAL_FORMS": "0",
    "documents-MIN_NUM_FORMS": "0",
    "documents-MAX_NUM_FORMS": "0",
}


@pytest.fixture
def source_a(tenant_a):
    return ingest_text(tenant=tenant_a.tenant, title="Vault", text=SECRET)


@pytest.fixture
def source_b(tenant_b):
    return ingest_text(tenant=tenant_b.tenant, title="Bikes", text="Bluebird bikes are blue.")


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login


def test_changelists_show_only_own_tenant(login, source_a, source_b, tenant_b):
    client = login(tenant_b.owner)
    for name in ("source", "document", "chunk"):
        response = client.get(reverse(f"admin:knowledge_{name}_changelist"))
        assert response.status_code == 200, name
        body = response.content.decode()
        assert "Vault" not in body and "31-17-42" not in body, name
    assert "Bikes" in client.get(reverse("admin:knowledge_source_changelist")).content.decode()


def test_own_source_page_shows_status_and_progress(login, source_a, tenant_a):
    response = login(tenant_a.agent).get(
        reverse("admin:knowledge_source_change", args=[source_a.pk])
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Vault" in body
    assert f"kn-progress-{source_a.public_id}" in body
    assert "/ws/admin/knowledge/?tenant=acme" in body


@pytest.mark.parametrize("model", ["source", "document", "chunk"])
def test_other_tenants_change_pages_are_not_found(login, source_a, tenant_b, tenant_a, model):
    obj = {
        "source": source_a,
        "document": Document.objects.for_tenant(tenant_a.tenant).get(source=source_a),
        "chunk": Chunk.objects.for_tenant(tenant_a.tenant).filter(source=source_a).first(),
    }[model]
    response = login(tenant_b.owner).get(reverse(f"admin:knowledge_{model}_change", args=[obj.pk]))
    # Django's admin redirects to the index for rows outside the user's queryset.
    assert response.status_code == 302
    assert response.headers["Location"] == reverse("admin:index")


def test_other_tenants_sync_now_is_404(login, source_a, tenant_b):
    url = reverse("admin:knowledge_source_sync_now_detail", args=[source_a.pk])
    with mock.patch("apps.knowledge.tasks.sync_source.delay") as delay:
        response = login(tenant_b.owner).get(url)
    assert response.status_code in (403, 404)
    delay.assert_not_called()


def test_sync_now_queues_a_sync(login, source_a, tenant_a, django_capture_on_commit_callbacks):
    url = reverse("admin:knowledge_source_sync_now_detail", args=[source_a.pk])
    with (
        mock.patch("apps.knowledge.tasks.sync_source.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = login(tenant_a.admin).post(url)  # a GET only asks (issue #11)
    assert response.status_code == 302
    delay.assert_called_once_with(tenant_a.tenant.pk, source_a.pk)
    source_a.refresh_from_db()
    assert source_a.status == Source.Status.QUEUED


def test_agent_cannot_sync_or_edit(login, source_a, tenant_a):
    client = login(tenant_a.agent)
    url = reverse("admin:knowledge_source_sync_now_detail", args=[source_a.pk])
    assert client.get(url).status_code == 403


def test_outsider_gets_nothing(login, source_a, tenant_a):
    client = login(tenant_a.outsider)
    for url in (
        reverse("admin:knowledge_source_changelist"),
        reverse("admin:knowledge_source_test_retrieval"),
        reverse("admin:knowledge_source_progress"),
        reverse("admin:knowledge_knowledgeindex_changelist"),
    ):
        assert client.get(url).status_code == 403, url


def test_test_retrieval_shows_ranked_chunks_with_modes(login, source_a, tenant_a):
    url = reverse("admin:knowledge_source_test_retrieval")
    client = login(tenant_a.agent)
    response = client.get(
        url,
        {"tenant": tenant_a.tenant.pk, "query": "vault combination", "mode": "hybrid", "limit": 5},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "31-17-42" in body
    assert "both" in body or "dense" in body or "sparse" in body
    results = response.context["results"]
    assert results[0].title == "Vault" and results[0].rank == 1


def test_test_retrieval_refuses_other_tenant(login, source_a, tenant_a, tenant_b):
    url = reverse("admin:knowledge_source_test_retrieval")
    response = login(tenant_b.owner).get(
        url, {"tenant": tenant_a.tenant.pk, "query": SECRET, "mode": "hybrid", "limit": 5}
    )
    assert response.status_code == 200
    assert response.context["results"] is None
    assert "kn-results" not in response.content.decode()


def test_progress_json_lists_only_own_sources(login, source_a, source_b, tenant_b):
    response = login(tenant_b.agent).get(reverse("admin:knowledge_source_progress"))
    data = response.json()
    assert [s["name"] for s in data["sources"]] == ["Bikes"]
    assert "indexes" not in data
    response = login(tenant_b.agent).get(
        reverse("admin:knowledge_source_progress"), {"tenant": "acme"}
    )
    assert response.json()["sources"] == []


def _add_form(tenant, **fields):
    data = {
        "tenant": tenant.pk,
        "name": "New source",
        "kind": "text",
        "url": "",
        "text": "",
        "access_groups_text": "",
        "schedule_minutes": "0",
        "max_pages": "50",
        "max_depth": "2",
        **INLINE_MANAGEMENT,
    }
    data.update(fields)
    return data


def test_add_form_shows_validation_errors(login, tenant_a):
    client = login(tenant_a.admin)
    url = reverse("admin:knowledge_source_add")
    response = client.post(url, _add_form(tenant_a.tenant, kind="sitemap", url="ftp://x.example/"))
    assert response.status_code == 200
    assert "http://" in response.content.decode()  # the URL scheme error, shown on the form
    upload = SimpleUploadedFile("notes.exe", b"MZ\x90\x00binary")
    response = client.post(url, _add_form(tenant_a.tenant, kind="upload", upload=upload))
    assert response.status_code == 200
    assert "Unsupported file type" in response.content.decode()
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


def test_add_upload_source_saves_file_and_queues_sync(
    login, tenant_a, django_capture_on_commit_callbacks
):
    client = login(tenant_a.admin)
    upload = SimpleUploadedFile("faq.md", b"# FAQ\n\nWe ship anvils worldwide.")
    with (
        mock.patch("apps.knowledge.tasks.sync_source.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("admin:knowledge_source_add"),
            _add_form(tenant_a.tenant, kind="upload", upload=upload, access_groups_text="staff"),
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    source = Source.objects.for_tenant(tenant_a.tenant).get()
    assert source.upload.name.endswith("faq.md")
    assert str(tenant_a.tenant.public_id) in source.upload.name
    assert source.access_groups == ["staff"]
    assert source.created_by == tenant_a.admin
    delay.assert_called_once_with(tenant_a.tenant.pk, source.pk)


def test_admin_cannot_add_source_to_other_tenant(login, tenant_a, tenant_b):
    response = login(tenant_b.admin).post(
        reverse("admin:knowledge_source_add"), _add_form(tenant_a.tenant, text="Sneaky")
    )
    assert response.status_code == 200  # form error: the tenant is not a valid choice
    assert not Source.objects.for_tenant(tenant_a.tenant).exists()


def test_deleting_a_source_in_admin_removes_its_points(login, source_a, tenant_a):
    from apps.knowledge.selectors import chunk_search

    response = login(tenant_a.owner).post(
        reverse("admin:knowledge_source_delete", args=[source_a.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert chunk_search(tenant=tenant_a.tenant, query="vault combination") == []


def test_index_admin_is_for_superusers_only(login, source_a, tenant_a, django_user_model):
    assert (
        login(tenant_a.owner).get(reverse("admin:knowledge_knowledgeindex_changelist")).status_code
        == 403
    )
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    response = login(root).get(reverse("admin:knowledge_knowledgeindex_changelist"))
    assert response.status_code == 200
    assert "supportai_chunks_" in response.content.decode()
