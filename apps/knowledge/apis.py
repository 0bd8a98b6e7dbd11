"""REST endpoints: knowledge sources and documents, and retrieval-only search."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.core.api.auth import acting_user
from apps.core.api.scopes import Scope
from apps.core.api.viewsets import UUID_REGEX, TenantApiViewSet, TenantCommandViewSet
from apps.knowledge import api_services, selectors, services
from apps.knowledge.models import Document, Source
from apps.knowledge.serializers import (
    DocumentSerializer,
    SearchResponseSerializer,
    SearchSerializer,
    SourceCreateSerializer,
    SourceSerializer,
    SourceUploadSerializer,
)

READ = [Scope.KNOWLEDGE_READ]
WRITE = [Scope.KNOWLEDGE_WRITE]


class SourceFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Source.Kind.choices)
    status = django_filters.ChoiceFilter(choices=Source.Status.choices)

    class Meta:
        model = Source
        fields = ["kind", "status"]


class DocumentFilter(django_filters.FilterSet):
    source = django_filters.UUIDFilter(field_name="source__public_id")
    status = django_filters.ChoiceFilter(choices=Document.Status.choices)

    class Meta:
        model = Document
        fields = ["source", "status"]


@extend_schema_view(
    list=extend_schema(summary="List knowledge sources", tags=["knowledge"]),
    retrieve=extend_schema(summary="Get a knowledge source", tags=["knowledge"]),
    destroy=extend_schema(
        summary="Delete a knowledge source",
        tags=["knowledge"],
        description="Removes its documents and everything indexed from them.",
    ),
)
class SourceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantApiViewSet
):
    queryset = Source.objects.none()  # for the schema; get_queryset scopes
    serializer_class = SourceSerializer
    required_scopes = {
        "list": READ,
        "retrieve": READ,
        "create": WRITE,
        "destroy": WRITE,
        "sync": WRITE,
    }
    parser_classes = [JSONParser, MultiPartParser]
    lookup_value_regex = UUID_REGEX
    filterset_class = SourceFilter
    ordering_fields = ["created_at", "updated_at", "name"]

    def get_queryset(self):
        return selectors.source_list(tenant=self.tenant)

    @extend_schema(
        summary="Add a knowledge source",
        tags=["knowledge"],
        request={
            "application/json": SourceCreateSerializer,
            "multipart/form-data": SourceUploadSerializer,
        },
        responses={201: SourceSerializer},
        description=(
            "JSON for text (`kind: text`, `text`) and web sources (`kind: url` for one page, "
            "`sitemap` for a site); multipart/form-data with an `upload` file for documents. "
            "The first sync is queued at once (`status: queued`)."
        ),
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        is_upload = request.content_type.startswith("multipart/")
        serializer_class = SourceUploadSerializer if is_upload else SourceCreateSerializer
        data = dict(self.validated(serializer_class))
        if is_upload:
            data["kind"] = Source.Kind.UPLOAD
        source = services.source_create(
            tenant=self.tenant,
            created_by=acting_user(request),
            **{k: v for k, v in data.items() if v not in (None, "")},
        )
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Source) -> None:
        services.source_delete(source=instance)

    @extend_schema(
        summary="Sync a knowledge source now",
        tags=["knowledge"],
        request=None,
        responses={202: SourceSerializer},
    )
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, public_id: str | None = None) -> Response:
        source = services.source_request_sync(source=self.get_object())
        return Response(SourceSerializer(source).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="List knowledge documents", tags=["knowledge"]),
    retrieve=extend_schema(summary="Get a knowledge document", tags=["knowledge"]),
    destroy=extend_schema(
        summary="Delete a knowledge document",
        tags=["knowledge"],
        description="It comes back on the source's next sync if the source still has it.",
    ),
)
class DocumentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantApiViewSet
):
    queryset = Document.objects.none()  # for the schema; get_queryset scopes
    serializer_class = DocumentSerializer
    required_scopes = {"list": READ, "retrieve": READ, "destroy": WRITE}
    lookup_value_regex = UUID_REGEX
    filterset_class = DocumentFilter
    ordering_fields = ["created_at", "updated_at"]

    def get_queryset(self):
        return selectors.document_list(tenant=self.tenant).select_related("source")

    def perform_destroy(self, instance: Document) -> None:
        services.document_delete(document=instance)


class SearchViewSet(TenantCommandViewSet):
    serializer_class = SearchSerializer
    required_scopes = {"create": READ}

    @extend_schema(
        summary="Search the knowledge base",
        tags=["knowledge"],
        request=SearchSerializer,
        responses={200: SearchResponseSerializer},
        description=(
            "Retrieval only (no language model): the chunks that best match `query`, best "
            "first. `mode` is `hybrid` (dense + keyword, fused), `dense` or `sparse`."
        ),
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        results = api_services.knowledge_search(
            tenant=self.tenant, **self.validated(SearchSerializer)
        )
        return Response(SearchResponseSerializer({"results": results}).data)


router = SimpleRouter()
router.register("knowledge/sources", SourceViewSet, basename="knowledge-source")
router.register("knowledge/documents", DocumentViewSet, basename="knowledge-document")
router.register("search", SearchViewSet, basename="search")
