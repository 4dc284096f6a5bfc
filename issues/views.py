"""DRF viewsets: parse the request, call one service or selector, serialize the answer."""

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import parse_header_parameters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes
from rest_framework.exceptions import NotFound, UnsupportedMediaType, ValidationError
from rest_framework.metadata import SimpleMetadata
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import csv_io, selectors, services
from .exceptions import VersionConflict
from .fastpath.session import database_reachable
from .filters import IssueFilterSet
from .idempotency import idempotent
from .models import MAX_ID, Issue, Label
from .pagination import KeysetPagination, PageNumberPagination
from .serializers import (
    AuthTokenInputSerializer,
    CommentInputSerializer,
    CommentSerializer,
    ConflictSerializer,
    IssueCreateInputSerializer,
    IssueDetailSerializer,
    IssueEventSerializer,
    IssueSerializer,
    IssueUpdateInputSerializer,
    LabelInputSerializer,
    LabelSerializer,
    LabelsReplaceInputSerializer,
    LabelUpdateInputSerializer,
    TokenSerializer,
    UserSerializer,
    parse_bulk_status,
)

ID_REGEX = r"[0-9]+"
VERSION_REQUIRED = {"version": ["This field is required."]}


def parse_id(raw: str) -> int:
    """A path id as an int; ids the database cannot hold are simply not found."""
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise NotFound()
    return value


def etag_of(issue: Issue) -> str:
    return f'"{issue.version}"'


def parse_etag(header: str) -> int | None:
    """The version in an ``If-Match``/``If-None-Match`` value such as ``"3"`` or ``W/"3"``; None if none."""
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else None


def conflict_response(conflict: VersionConflict, http_status: int) -> Response:
    current = selectors.issue_get(issue_id=conflict.current.pk)
    body = {
        "detail": f"Version conflict: the issue is at version {current.version}.",
        "code": "version_conflict",
        "current_version": current.version,
        "current": IssueSerializer(current).data,
    }
    return Response(body, status=http_status, headers={"ETag": etag_of(current)})


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
IMPORT_UPLOAD = inline_serializer("CsvImportUpload", {"file": serializers.FileField()})
IMPORT_RESULT = inline_serializer(
    "CsvImportResult",
    {
        "total_rows": serializers.IntegerField(),
        "created": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
        "errors_truncated": serializers.BooleanField(),
        "ignored_columns": serializers.ListField(child=serializers.CharField()),
    },
)


def parse_flag(params: Any, name: str) -> bool:
    """A boolean query parameter (``true/false/1/0/yes/no``); anything else is a 400 naming it."""
    raw = params.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValidationError({name: ["Must be true or false."]})


class ImportSizeLimitHandler(FileUploadHandler):
    """Stops a multipart upload as soon as it passes IMPORT_MAX_BYTES, also without a Content-Length."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > settings.IMPORT_MAX_BYTES:
            raise csv_io.ImportTooLarge.bytes(settings.IMPORT_MAX_BYTES)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _read_body(request: HttpRequest) -> Iterator[bytes]:
    while chunk := request.read(IMPORT_CHUNK_BYTES):
        yield chunk


def import_chunks(request: Request) -> Iterator[bytes]:
    """The CSV of an import as byte chunks: the multipart field ``file`` (Django spools big uploads to disk)
    or a raw ``text/csv`` body, read as it arrives. Other media types are a 415."""
    media_type, params = parse_header_parameters(request.content_type or "")
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ValidationError({"file": [f"Only UTF-8 is accepted, not {charset}."]})
    if media_type == "multipart/form-data":
        django_request = request._request
        if not hasattr(django_request, "_files"):  # else parsed already (CSRF check); size checked below
            django_request.upload_handlers = [ImportSizeLimitHandler(django_request), *django_request.upload_handlers]
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["No file was submitted (multipart field 'file')."]})
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise csv_io.ImportTooLarge.bytes(settings.IMPORT_MAX_BYTES)
        return upload.chunks(IMPORT_CHUNK_BYTES)
    if media_type in CSV_MEDIA_TYPES:
        return _read_body(request._request)
    raise UnsupportedMediaType(
        media_type or "(none)", detail="Send the CSV as multipart/form-data (field 'file') or as a text/csv body."
    )


class NoObjectMetadata(SimpleMetadata):
    """OPTIONS for a collection action that takes PUT (bulk-status): DRF would fetch an object for PUT."""

    def determine_actions(self, request: Request, view: Any) -> dict:
        return {}


class JSONErrorsContentNegotiation(BaseContentNegotiation):
    """For the CSV export: errors are always JSON whatever the ``Accept`` header (say ``text/csv``)."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class IssueViewSet(viewsets.GenericViewSet):
    """Issues: list, create, detail, version-checked PATCH, labels, comments and timeline."""

    queryset = Issue.objects.none()
    serializer_class = IssueSerializer
    filterset_class = IssueFilterSet
    lookup_value_regex = ID_REGEX
    permission_map = {
        "list": ["issues.view_issue"],
        "retrieve": ["issues.view_issue"],
        "create": ["issues.add_issue"],
        "partial_update": ["issues.change_issue"],
        "labels": ["issues.change_issue"],
        "comments": ["issues.view_comment"],
        "timeline": ["issues.view_issueevent"],
        "bulk_status": ["issues.bulk_update_issue"],
        "import_csv": ["issues.import_issue"],
        "export_csv": ["issues.view_issue"],
    }

    def get_queryset(self) -> Any:
        return selectors.issue_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {
            "create": IssueCreateInputSerializer,
            "partial_update": IssueUpdateInputSerializer,
            "retrieve": IssueDetailSerializer,
            "labels": LabelsReplaceInputSerializer,
            "comments": CommentInputSerializer,
            "timeline": IssueEventSerializer,
        }.get(self.action, IssueSerializer)

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        if self.action == "comments" and request.method == "POST" and not request.user.has_perm("issues.add_comment"):
            self.permission_denied(request, message="You may not comment.")

    def _issue_id(self) -> int:
        return parse_id(self.kwargs["pk"])

    def _issue_response(self, issue: Issue, http_status: int = status.HTTP_200_OK, **headers: str) -> Response:
        """An issue a service returned (its labels already loaded), with its ETag."""
        return Response(IssueSerializer(issue).data, status=http_status, headers={"ETag": etag_of(issue), **headers})

    @property
    def paginator(self) -> Any:
        """Page numbers by default; keyset pagination for the list with ``?pagination=keyset``."""
        if not hasattr(self, "_paginator"):
            mode = self.request.query_params.get("pagination", "page") if self.action == "list" else "page"
            self._paginator = KeysetPagination() if mode == "keyset" else PageNumberPagination()
        return self._paginator

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "pagination",
                str,
                enum=["page", "keyset"],
                required=False,
                description="`keyset`: cursor links, newest first, no `count` (constant cost on large tables).",
            ),
            OpenApiParameter("cursor", str, required=False, description="With `pagination=keyset`."),
        ]
    )
    def list(self, request: Request) -> Response:
        mode = request.query_params.get("pagination", "page")
        if mode not in ("page", "keyset"):
            raise ValidationError({"pagination": ["Use 'page' or 'keyset'."]})
        if mode == "keyset" and "ordering" in request.query_params:
            raise ValidationError({"ordering": ["Keyset pagination lists newest first; omit 'ordering'."]})
        # What the paginator pages: every issue (no filter: the count is the kept total), and in the default
        # order too (the first pages are read with that count by one prepared statement).
        asked = {name for name in IssueFilterSet.base_filters if name in request.query_params}
        self.unfiltered, self.whole_list = not asked - {"ordering"}, not asked
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(IssueSerializer(page, many=True).data)

    @extend_schema(request=IssueCreateInputSerializer, responses={201: IssueSerializer})
    @idempotent
    def create(self, request: Request) -> Response:
        data = IssueCreateInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        issue = services.issue_create(actor=request.user, **data.validated_data)
        location = request.build_absolute_uri(reverse("issue-detail", kwargs={"pk": issue.pk}))
        return self._issue_response(issue, status.HTTP_201_CREATED, Location=location)

    @extend_schema(
        responses={200: IssueDetailSerializer, 304: OpenApiResponse(description="Not modified")},
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)],
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        issue_id = self._issue_id()
        try:
            issue = selectors.issue_detail(issue_id=issue_id)
        except Issue.DoesNotExist as exc:
            raise NotFound() from exc
        etag = etag_of(issue)
        if_none_match = request.headers.get("If-None-Match", "")
        tags = [tag.strip() for tag in if_none_match.split(",")]
        if "*" in tags or issue.version in {parse_etag(tag) for tag in tags if tag}:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        data = IssueDetailSerializer(issue).data
        return Response(data, headers={"ETag": etag})

    @extend_schema(
        request=IssueUpdateInputSerializer,
        responses={200: IssueSerializer, 409: ConflictSerializer, 412: ConflictSerializer},
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, required=False)],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        issue_id = self._issue_id()
        data = IssueUpdateInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        version = changes.pop("version", None)
        conflict_status = status.HTTP_409_CONFLICT
        if version is None:
            if_match = request.headers.get("If-Match")
            if if_match is None:
                raise ValidationError(VERSION_REQUIRED)
            version = parse_etag(if_match)
            if version is None:
                raise ValidationError({"version": ['If-Match must be a quoted version such as "3".']})
            conflict_status = status.HTTP_412_PRECONDITION_FAILED
        try:
            issue, _ = services.issue_update(
                issue_id=issue_id, actor=request.user, expected_version=version, changes=changes
            )
        except Issue.DoesNotExist as exc:
            raise NotFound() from exc
        except VersionConflict as conflict:
            return conflict_response(conflict, conflict_status)
        return self._issue_response(issue)

    @extend_schema(
        request=LabelsReplaceInputSerializer,
        responses={200: IssueSerializer, 409: ConflictSerializer},
        description='Replace the label set. Body: `["bug"]`, `[{"name": "bug"}]` or `{"labels": [...], "version": n}`.',
    )
    @action(detail=True, methods=["put"], url_path="labels")
    def labels(self, request: Request, pk: str) -> Response:
        issue_id = self._issue_id()
        body = request.data
        if isinstance(body, list):
            body = {"labels": body}
        data = LabelsReplaceInputSerializer(data=body)
        data.is_valid(raise_exception=True)
        try:
            issue, _ = services.issue_update(
                issue_id=issue_id,
                actor=request.user,
                expected_version=data.validated_data.get("version"),
                changes={"labels": data.validated_data["labels"]},
            )
        except Issue.DoesNotExist as exc:
            raise NotFound() from exc
        except VersionConflict as conflict:
            return conflict_response(conflict, status.HTTP_409_CONFLICT)
        return self._issue_response(issue)

    @extend_schema(methods=["GET"], responses={200: CommentSerializer(many=True)}, filters=False)
    @extend_schema(methods=["POST"], request=CommentInputSerializer, responses={201: CommentSerializer})
    @action(detail=True, methods=["get", "post"], url_path="comments")
    @idempotent
    def comments(self, request: Request, pk: str) -> Response:
        issue_id = self._issue_id()
        if not Issue.objects.filter(pk=issue_id).exists():
            raise NotFound()
        if request.method == "POST":
            data = CommentInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            comment = services.comment_create(issue_id=issue_id, author=request.user, **data.validated_data)
            comment = selectors.issue_comments(issue_id=issue_id).get(pk=comment.pk)
            return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(selectors.issue_comments(issue_id=issue_id))
        return self.get_paginated_response(CommentSerializer(page, many=True).data)

    @extend_schema(responses={200: IssueEventSerializer(many=True)}, filters=False)
    @action(detail=True, methods=["get"], url_path="timeline")
    def timeline(self, request: Request, pk: str) -> Response:
        issue_id = self._issue_id()
        if not Issue.objects.filter(pk=issue_id).exists():
            raise NotFound()
        page = self.paginate_queryset(selectors.issue_timeline(issue_id=issue_id))
        return self.get_paginated_response(IssueEventSerializer(page, many=True).data)

    def filter_queryset(self, queryset: Any) -> Any:
        if self.action in ("comments", "timeline"):
            return queryset
        if not any(name in self.request.query_params for name in IssueFilterSet.base_filters):
            # No filter asked for: every filter is a no-op on an empty value, so the FilterSet would only
            # build and validate an empty form (a third of an unfiltered list's Python time) to change nothing.
            return queryset
        return super().filter_queryset(queryset)

    # --- bulk status, CSV import and export (issue 3) ---------------------------------------------------

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
        try:
            result = services.issue_bulk_set_status(actor=request.user, items=items)
        except services.BulkInvalid as exc:
            body = {"detail": f"{len(exc.errors)} invalid item(s); nothing was changed.", "code": "invalid"}
            return Response({**body, "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
        except services.BulkConflict as exc:
            detail = f"{len(exc.conflicts)} item(s) carry a stale version; nothing was changed."
            body = {"detail": detail, "code": "version_conflict", "conflicts": exc.conflicts}
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(result)

    @extend_schema(
        request={"multipart/form-data": IMPORT_UPLOAD, "text/csv": bytes},
        parameters=[OpenApiParameter("dry_run", bool, required=False)],
        responses={200: IMPORT_RESULT, 400: OpenApiResponse(description="bad header or encoding"), 413: None},
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    @idempotent
    def import_csv(self, request: Request) -> Response:
        dry_run = parse_flag(request.query_params, "dry_run")
        try:
            chunks = import_chunks(request)
            result = services.issue_import_csv(actor=request.user, chunks=chunks, dry_run=dry_run)
        except csv_io.CsvDecodeError as exc:
            body = {"detail": str(exc), "code": "invalid_encoding", "line": exc.line}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        except csv_io.CsvHeaderError as exc:
            return Response({"detail": str(exc), "code": "invalid_header"}, status=status.HTTP_400_BAD_REQUEST)
        except csv_io.ImportTooLarge as exc:
            body = {"detail": f"{exc} Nothing was imported.", "code": "request_too_large"}
            return Response(body, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        return Response(result.as_dict())

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(description="the issues as CSV")})
    @action(detail=False, methods=["get"], url_path="export", content_negotiation_class=JSONErrorsContentNegotiation)
    def export_csv(self, request: Request) -> StreamingHttpResponse:
        queryset = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(csv_io.export_issues(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="issues.csv"'
        return response


class LabelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Labels: names unique ignoring case; maintainers create, rename and delete them."""

    serializer_class = LabelSerializer
    lookup_value_regex = ID_REGEX
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    permission_map = {
        "list": ["issues.view_label"],
        "retrieve": ["issues.view_label"],
        "create": ["issues.add_label"],
        "partial_update": ["issues.change_label"],
        "destroy": ["issues.delete_label"],
    }

    def get_queryset(self) -> Any:
        return selectors.label_list()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {"create": LabelInputSerializer, "partial_update": LabelUpdateInputSerializer}.get(
            self.action, LabelSerializer
        )

    def get_object(self) -> Label:
        self.kwargs["pk"] = parse_id(self.kwargs["pk"])
        return super().get_object()

    def _label_response(self, label_id: int, http_status: int = status.HTTP_200_OK, **headers: str) -> Response:
        try:
            label = selectors.label_list().get(pk=label_id)
        except Label.DoesNotExist as exc:  # deleted by someone else since this request wrote it
            raise NotFound() from exc
        return Response(LabelSerializer(label).data, status=http_status, headers=headers)

    @extend_schema(request=LabelInputSerializer, responses={201: LabelSerializer})
    @idempotent
    def create(self, request: Request) -> Response:
        data = LabelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            label = services.label_create(**data.validated_data)
        except services.LabelNameTaken as exc:
            raise ValidationError({"name": ["A label with this name already exists."]}) from exc
        location = request.build_absolute_uri(reverse("label-detail", kwargs={"pk": label.pk}))
        # Rendered from what was written (a new label is on no issue), not read back: it may be deleted already.
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(request=LabelUpdateInputSerializer, responses={200: LabelSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        label = self.get_object()
        data = LabelUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.label_update(label=label, **data.validated_data)
        except services.LabelNameTaken as exc:
            raise ValidationError({"name": ["A label with this name already exists."]}) from exc
        except Label.DoesNotExist as exc:
            raise NotFound() from exc
        return self._label_response(label.pk)

    @extend_schema(
        responses={
            204: None,
            404: OpenApiResponse(description="No such label (also when deleted meanwhile)"),
            503: OpenApiResponse(description="The label is in use by a change in progress; see Retry-After"),
        }
    )
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete the label; each issue that carried it gets a new version and a ``labels_changed`` event."""
        label = self.get_object()
        try:
            services.label_delete(label=label, actor=request.user)
        except Label.DoesNotExist as exc:
            raise NotFound() from exc
        except services.LabelBusy as exc:
            retry_after = str(getattr(settings, "DB_RETRY_AFTER_SECONDS", 5))
            return Response(
                {"detail": str(exc), "code": "label_busy"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": retry_after},
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Users, so clients can find assignee ids. ``?search=`` matches username and name."""

    serializer_class = UserSerializer
    lookup_value_regex = ID_REGEX
    filter_backends: list = []
    permission_map = {"list": ["auth.view_user"], "retrieve": ["auth.view_user"]}

    def get_queryset(self) -> Any:
        search = self.request.query_params.get("search") if self.action == "list" else None
        if search and "\x00" in search:
            raise ValidationError({"search": ["Null characters are not allowed."]})
        return selectors.user_list(search=search)

    def get_object(self) -> Any:
        self.kwargs["pk"] = parse_id(self.kwargs["pk"])
        return super().get_object()

    @extend_schema(parameters=[OpenApiParameter("search", str, required=False)])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class ObtainTokenView(APIView):
    """``POST /api/auth/token`` with ``{"username", "password"}`` → ``{"token"}``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = AuthTokenInputSerializer
    throttle_scope = "auth"  # THROTTLE_RATES["auth"]: stricter than the rest, against password guessing

    @extend_schema(request=AuthTokenInputSerializer, responses={200: TokenSerializer})
    def post(self, request: Request) -> Response:
        from django.contrib.auth import authenticate

        data = AuthTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request=request._request, **data.validated_data)
        if user is None:
            raise ValidationError({"non_field_errors": ["Unable to log in with the given credentials."]})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


@extend_schema(
    responses={
        200: inline_serializer("Health", {"status": serializers.CharField(), "database": serializers.CharField()}),
        503: inline_serializer("HealthDown", {"status": serializers.CharField(), "database": serializers.CharField()}),
    }
)
@api_view(["GET", "HEAD"])
@authentication_classes([])
@permission_classes([AllowAny])
def health(request: Request) -> Response:
    """Liveness and database reachability."""
    if not database_reachable():
        return Response({"status": "degraded", "database": "unavailable"}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    return Response({"status": "ok", "database": "ok"})


@extend_schema(responses={200: inline_serializer("ApiRoot", {"issues": serializers.URLField()})})
@api_view(["GET", "HEAD"])
@permission_classes([AllowAny])
def api_root(request: Request) -> Response:
    """The entry point: links to every collection."""
    names = {
        "issues": "issue-list",
        "labels": "label-list",
        "users": "user-list",
        "reports/top-assignees": "report-top-assignees",
        "reports/latency": "report-latency",
        "reports/throughput": "report-throughput",
        "auth-token": "auth-token",
        "health": "health",
        "schema": "schema",
        "docs": "docs",
    }
    return Response({key: request.build_absolute_uri(reverse(name)) for key, name in names.items()})
