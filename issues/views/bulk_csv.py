"""Bulk status changes and CSV import/export: actions of the issue collection (``/api/issues/bulk-status``,
``/import``, ``/export``), mixed into ``IssueViewSet``."""

import re
from collections.abc import Iterator
from typing import Any, cast

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import parse_header_parameters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, UnsupportedMediaType, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.viewsets import GenericViewSet

from .. import csv_io, services
from ..access import Action, access_for, default_project_key
from ..idempotency import idempotent
from ..models import PROJECT_KEY_PATTERN, Project
from ..serializers import parse_bulk_status
from .common import JSONErrorsContentNegotiation, NoObjectMetadata, parse_flag

CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
IMPORT_CHUNK_BYTES = 256 * 1024
BULK_RESULT = inline_serializer(
    "BulkStatusResult",
    {
        "updated": serializers.IntegerField(),
        "unchanged": serializers.IntegerField(),
        "results": serializers.ListField(child=serializers.DictField()),
    },
)
BULK_CONFLICT = inline_serializer(
    "BulkStatusConflict",
    {"detail": serializers.CharField(), "conflicts": serializers.ListField(child=serializers.DictField())},
)


class CsvImportUploadSerializer(serializers.Serializer):
    """The import's multipart form (the browsable API renders it): the file, its format, the mapping over the format's
    preset and whether to only preview. ``format``, ``mapping`` and ``dry_run`` may be query parameters instead."""

    file = serializers.FileField()
    format = serializers.ChoiceField(choices=csv_io.formats.FORMATS, default="auto", required=False)
    mapping = serializers.CharField(
        required=False,
        allow_blank=True,
        style={"base_template": "textarea.html"},
        help_text='JSON: {"columns": {...}, "values": {"status": {...}, "priority": {...}}, "users": {...}, '
        '"unknown_users": "error|unassign"}',
    )
    dry_run = serializers.BooleanField(required=False, default=False)


IMPORT_UPLOAD = CsvImportUploadSerializer
IMPORT_RESULT = inline_serializer(
    "CsvImportResult",
    {
        "total_rows": serializers.IntegerField(),
        "created": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
        "errors_truncated": serializers.BooleanField(),
        "ignored_columns": serializers.ListField(child=serializers.CharField()),
        "format": serializers.CharField(),
        "mapping": serializers.DictField(),
        "unmapped_values": serializers.DictField(child=serializers.DictField(child=serializers.IntegerField())),
    },
)


class _NoFormatOverride:
    """DRF's settings, except that no query parameter picks the renderer (``URL_FORMAT_OVERRIDE``)."""

    URL_FORMAT_OVERRIDE = None

    def __getattr__(self, name: str) -> Any:
        return getattr(api_settings, name)


class ImportContentNegotiation(DefaultContentNegotiation):
    """For the import, ``?format=`` is the CSV's format (``jira``, ``gitlab``, ...), not DRF's renderer override
    (which would answer 404 to a format it has no renderer for); the ``Accept`` header still picks the renderer."""

    settings = cast(Any, _NoFormatOverride())


class ImportSizeLimitHandler(FileUploadHandler):
    """Stops a multipart upload as soon as it passes IMPORT_MAX_BYTES (``limit``: a job's own), also without a
    Content-Length."""

    limit: int | None = None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        limit = self.limit or settings.IMPORT_MAX_BYTES
        if start + len(raw_data) > limit:
            raise csv_io.ImportTooLarge.bytes(limit)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _read_body(request: HttpRequest) -> Iterator[bytes]:
    while chunk := request.read(IMPORT_CHUNK_BYTES):
        yield chunk


def import_chunks(request: Request, max_bytes: int | None = None) -> Iterator[bytes]:
    """The CSV of an import as byte chunks: the multipart field ``file`` (Django spools big uploads to disk)
    or a raw ``text/csv`` body, read as it arrives. Other media types are a 415. ``max_bytes``: a job's limit
    instead of IMPORT_MAX_BYTES."""
    max_bytes = max_bytes or settings.IMPORT_MAX_BYTES
    media_type, params = parse_header_parameters(request.content_type or "")
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ValidationError({"file": [f"Only UTF-8 is accepted, not {charset}."]})
    if media_type == "multipart/form-data":
        django_request = request._request
        if not hasattr(django_request, "_files"):  # else parsed already (CSRF check); size checked below
            handler = ImportSizeLimitHandler(django_request)
            handler.limit = max_bytes
            django_request.upload_handlers = [handler, *django_request.upload_handlers]
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["No file was submitted (multipart field 'file')."]})
        if upload.size > max_bytes:
            raise csv_io.ImportTooLarge.bytes(max_bytes)
        return upload.chunks(IMPORT_CHUNK_BYTES)
    if media_type in CSV_MEDIA_TYPES:
        return _read_body(request._request)
    raise UnsupportedMediaType(
        media_type or "(none)", detail="Send the CSV as multipart/form-data (field 'file') or as a text/csv body."
    )


def import_project(request: Request) -> Project:
    """The project of an import, ``?project=KEY`` (the default project when omitted or empty), checked before a
    byte of the body is read: a key that is malformed, unknown or names a project the caller cannot see is the
    same 404 (the contract's "invisible means 404"); a caller who is not a maintainer there gets a 403."""
    key = (request.query_params.get("project") or "").strip() or default_project_key()
    access = access_for(request.user)
    try:
        if not (key.isascii() and re.match(PROJECT_KEY_PATTERN, key.upper())):
            raise Project.DoesNotExist(key)
        project = access.project_by_key(key)
    except Project.DoesNotExist:
        raise NotFound() from None
    access.require(project.pk, Action.MANAGE)
    return project


def import_option(request: Request, name: str) -> str | None:
    """An import option: the query parameter, else the multipart form's field."""
    fields = request._request.POST if request.content_type.startswith("multipart/form-data") else {}
    value = request.query_params.get(name)
    return value if value is not None else fields.get(name)


def import_options(request: Request) -> tuple[str, csv_io.formats.ImportMapping, bool]:
    """The import's ``format``, ``mapping`` and ``dry_run``: query parameters, or fields of the multipart form (read
    after ``import_chunks``, which parses it). A bad one is a 400 naming it, before a row is read."""

    def option(name: str) -> str | None:
        return import_option(request, name)

    format_name = csv_io.formats.parse_format(option("format"))
    mapping = csv_io.formats.parse_mapping(option("mapping"))
    dry_run = parse_flag({"dry_run": option("dry_run") or ""}, "dry_run")
    return format_name, mapping, dry_run


def wants_async(request: Request) -> bool:
    """``Prefer: respond-async`` (RFC 7240) or ``?async=true``: run the import or export as a job (docs/jobs.md)."""
    preferences = {item.split(";")[0].strip().lower() for item in request.headers.get("Prefer", "").split(",")}
    if "respond-async" in preferences:
        return True
    return parse_flag({"async": request.query_params.get("async") or ""}, "async")


def job_accepted(request: Request, job: Any) -> Response:
    """202 with the job and ``Location: /api/jobs/{id}``."""
    from jobs.serializers import accepted_body

    location = request.build_absolute_uri(reverse("job-detail", kwargs={"pk": job.pk}))
    return Response(accepted_body(job, request), status=202, headers={"Location": location})


class BulkAndCsvActions(GenericViewSet):
    """``bulk-status``, ``import`` and ``export`` on the issue collection."""

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        # The import's form in the browsable API: the file, format, mapping and dry run (IssueViewSet's
        # get_serializer_class knows the issue's serializers only).
        if getattr(self, "action", None) == "import_csv":
            kwargs.setdefault("context", self.get_serializer_context())
            return CsvImportUploadSerializer(*args, **kwargs)
        return super().get_serializer(*args, **kwargs)

    @extend_schema(
        request=inline_serializer(
            "BulkStatusInput",
            {"ids": serializers.ListField(child=serializers.IntegerField()), "status": serializers.CharField()},
        ),
        responses={200: BULK_RESULT, 400: OpenApiResponse(description="invalid items"), 409: BULK_CONFLICT},
        description='Body: `[{"id", "status", "version"?}, ...]` or `{"ids": [...], "status": "..."}`.',
    )
    @action(detail=False, methods=["post", "put"], url_path="bulk-status", metadata_class=NoObjectMetadata)
    @idempotent
    def bulk_status(self, request: Request) -> Response:
        items = parse_bulk_status(request.data, max_items=settings.BULK_MAX_ITEMS)
        access = access_for(request.user)
        return Response(services.issue_bulk_set_status(actor=request.user, items=items, access=access))

    @extend_schema(
        request={"multipart/form-data": IMPORT_UPLOAD, "text/csv": bytes},
        parameters=[
            OpenApiParameter("project", str, required=False, description="the project's key (default project)"),
            OpenApiParameter("dry_run", bool, required=False),
            OpenApiParameter("format", str, required=False, enum=csv_io.formats.FORMATS, description="default auto"),
            OpenApiParameter("mapping", str, required=False, description="JSON object overriding the format's preset"),
        ],
        responses={
            200: IMPORT_RESULT,
            202: OpenApiResponse(description="a job (`Prefer: respond-async` or `?async=true`; docs/jobs.md)"),
            400: OpenApiResponse(description="bad header, encoding, date, format or mapping"),
            403: OpenApiResponse(description="not a maintainer of the project"),
            404: OpenApiResponse(description="no such project (or one the caller cannot see)"),
            413: None,
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser],
        content_negotiation_class=ImportContentNegotiation,
    )
    @idempotent
    def import_csv(self, request: Request) -> Response:
        project = import_project(request)
        if wants_async(request):
            from jobs import services as jobs

            chunks = import_chunks(request, max_bytes=settings.IMPORT_ASYNC_MAX_BYTES)
            format_name, _, dry_run = import_options(request)  # checked here: a bad one is a 400, not a failed job
            upload = jobs.stage_upload(chunks, max_bytes=settings.IMPORT_ASYNC_MAX_BYTES)
            params = {"format": format_name, "mapping": import_option(request, "mapping"), "dry_run": dry_run}
            job = jobs.create_job(kind="import", user=request.user, project=project, params=params, upload=upload)
            return job_accepted(request, job)
        chunks = import_chunks(request)
        format_name, mapping, dry_run = import_options(request)
        result = services.issue_import_csv(
            actor=request.user,
            project=project,
            chunks=chunks,
            dry_run=dry_run,
            format_name=format_name,
            mapping=mapping,
        )
        return Response(result.as_dict())

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(description="the issues as CSV"),
            202: OpenApiResponse(description="a job (`Prefer: respond-async` or `?async=true`; docs/jobs.md)"),
        }
    )
    @action(detail=False, methods=["get"], url_path="export", content_negotiation_class=JSONErrorsContentNegotiation)
    def export_csv(self, request: Request) -> StreamingHttpResponse | Response:
        # Scoped to the caller's projects by the selector (get_queryset: selectors.issue_list), then the list's filters.
        queryset = self.filter_queryset(self.get_queryset())
        if wants_async(request):  # the filters were checked just above: a bad one is a 400, not a failed job
            from jobs import services as jobs

            query = {name: request.query_params.getlist(name) for name in request.query_params if name != "async"}
            job = jobs.create_job(kind="export", user=request.user, params={"query": query})
            return job_accepted(request, job)
        response = StreamingHttpResponse(csv_io.export_issues(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="issues.csv"'
        return response
