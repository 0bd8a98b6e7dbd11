"""Admin pages of knowledge beyond the model admins: "Test retrieval" and the progress JSON.

They are mounted by `SourceAdmin.get_urls` (so the admin's login and staff checks apply) and
receive the tenants the user may see; they never look at another tenant's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

from apps.knowledge.selectors import chunk_search, progress_snapshot
from apps.knowledge.vectorstore.base import SEARCH_MODES
from apps.tenants.models import Tenant


class TestRetrievalForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    query = forms.CharField(max_length=1000, widget=forms.TextInput(attrs={"size": 80}))
    mode = forms.ChoiceField(choices=[(m, m) for m in SEARCH_MODES], initial="hybrid")
    groups = forms.CharField(
        required=False,
        help_text="Search as a customer in these comma-separated access groups; "
        "empty = an anonymous customer (public documents only).",
    )
    limit = forms.IntegerField(min_value=1, max_value=50, initial=10)

    def __init__(self, *args: Any, tenants: Sequence[Tenant] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        queryset = (
            Tenant.objects.all()
            if tenants is None
            else Tenant.objects.filter(pk__in=[t.pk for t in tenants])
        )
        self.fields["tenant"].queryset = queryset
        if queryset.count() == 1:
            self.fields["tenant"].initial = queryset.first()


def test_retrieval_context(request: HttpRequest, *, tenants: Sequence[Tenant] | None) -> dict:
    """`tenants=None` means every tenant (superusers)."""
    form = TestRetrievalForm(request.GET or None, tenants=tenants)
    results = None
    if form.is_valid():
        data = form.cleaned_data
        groups = [g.strip() for g in data["groups"].split(",") if g.strip()]
        results = chunk_search(
            tenant=data["tenant"],
            query=data["query"],
            access_groups=groups or None,
            limit=data["limit"],
            mode=data["mode"],
        )
    return {"form": form, "results": results}


def render_test_retrieval(request: HttpRequest, context: dict) -> HttpResponse:
    return TemplateResponse(request, "admin/knowledge/test_retrieval.html", context)


def progress_json(request: HttpRequest, *, tenants: Sequence[Tenant] | None) -> JsonResponse:
    """Polling fallback for the progress bars (the embedded demo's worker cannot reach the web
    process's in-memory channel layer). `tenants=None`: superuser, every tenant and indexes."""
    visible = list(Tenant.objects.all()) if tenants is None else list(tenants)
    slug = request.GET.get("tenant")
    if slug:
        visible = [t for t in visible if t.slug == slug]
    return JsonResponse(progress_snapshot(tenants=visible, include_indexes=tenants is None))
