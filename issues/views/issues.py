"""Issues: ``/api/issues``: list, create, detail, version-checked PATCH, labels, comments and timeline."""

from functools import partial
from typing import Any

from django.urls import reverse
from django_filters.utils import translate_validation
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api.pagination import KeysetPagination, PageNumberPagination

from .. import selectors, services
from ..access import Access, Action, access_for
from ..exceptions import VersionConflict
from ..facet_params import facets_from_params
from ..filters import IssueFilterSet, project_ids_param
from ..idempotency import idempotent
from ..models import Issue
from ..pagination import IssueListPaginator
from ..params import split_values
from ..search import Facets
from ..search_index import CountSource
from ..serializers import (
    CommentInputSerializer,
    CommentSerializer,
    ConflictSerializer,
    IssueCreateInputSerializer,
    IssueDetailSerializer,
    IssueEventSerializer,
    IssueSerializer,
    IssueUpdateInputSerializer,
    LabelsReplaceInputSerializer,
)
from .bulk_csv import BulkAndCsvActions
from .common import ISSUE_REF_REGEX, etag_of, parse_etag, parse_id

VERSION_REQUIRED = {"version": ["This field is required."]}


class IssueViewSet(BulkAndCsvActions, viewsets.GenericViewSet):
    """Issues: list, create, detail, version-checked PATCH, labels, comments and timeline."""

    queryset = Issue.objects.none()
    serializer_class = IssueSerializer
    filterset_class = IssueFilterSet
    lookup_value_regex = ISSUE_REF_REGEX
    # What a route needs in at least one project (issues.access.ProjectPermission); the issue's own project is
    # checked by each action. Reads need only authentication: the selectors scope them.
    permission_map = {
        "create": Action.WRITE,
        "bulk_status": Action.MANAGE,
        # Not the routes that name an issue or a project: an invisible one must be a 404 also for a caller who
        # may write nowhere (services.issue_update and import_project decide it), never a 403.
    }

    unfiltered = whole_list = False  # set by list(): what the paginator pages (see IssueListPaginator)
    count_projects: list[int] | None = None  # set by list(): the projects of ``?project=`` for the kept total
    # Set by filter_queryset: the issues the filters select when the kept facet counts can count them (only
    # project, status, priority and assignee asked, by parameters or ``q`` qualifiers), None otherwise.
    facets: Facets | None = None
    facet_pages = False  # set by list(): only everyday filters were asked (``issues.facet_params``)
    counted_by: CountSource | None = None  # set by filter_queryset: a word search counted by its documents

    @property
    def access(self) -> Access:
        return access_for(self.request.user)

    def get_queryset(self) -> Any:
        return selectors.issue_list(self.access)

    def get_django_paginator_class(self) -> Any:
        return partial(
            IssueListPaginator,
            access=self.access,
            unfiltered=self.unfiltered,
            whole_list=self.whole_list,
            count_projects=self.count_projects,
            facets=self.facets,
            facet_pages=self.facet_pages,
            counted_by=self.counted_by,
        )

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        classes: dict[str, type[serializers.BaseSerializer]] = {
            "create": IssueCreateInputSerializer,
            "partial_update": IssueUpdateInputSerializer,
            "retrieve": IssueDetailSerializer,
            "labels": LabelsReplaceInputSerializer,
            "comments": CommentInputSerializer,
            "timeline": IssueEventSerializer,
        }
        return classes.get(self.action or "", IssueSerializer)

    def _issue_id(self) -> int:
        """The issue named in the path, by id or by key (``WEB-42``). An issue the caller cannot see is found by
        its id (and then refused by the scoped read, a 404), never by its key."""
        raw = self.kwargs["pk"]
        if raw.isdigit():
            return parse_id(raw)
        try:
            return selectors.issue_id_by_key(self.access, raw)
        except Issue.DoesNotExist as exc:
            raise NotFound() from exc

    def _issue_project_id(self, issue_id: int) -> int:
        try:
            return selectors.issue_project_id(self.access, issue_id=issue_id)
        except Issue.DoesNotExist as exc:
            raise NotFound() from exc

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
        # Narrowed to some projects only, the count is still the kept total (of those projects).
        self.unfiltered, self.whole_list = not asked - {"ordering", "project"}, not asked
        if self.unfiltered and "project" in asked:
            keys = split_values(request.query_params.getlist("project"))
            self.count_projects = project_ids_param(request, keys) if keys else None
        facets = None if self.unfiltered or mode != "page" else facets_from_params(request)
        if facets is not None:  # only the everyday filters: read without the FilterSet
            self.facets, self.facet_pages = facets, True
            queryset = selectors.facet_filtered(self.get_queryset(), facets)
        else:
            queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(IssueSerializer(page, many=True).data)

    @extend_schema(request=IssueCreateInputSerializer, responses={201: IssueSerializer})
    @idempotent
    def create(self, request: Request) -> Response:
        data = IssueCreateInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        project = self.access.project_to_write(fields.pop("project", None), Action.WRITE)
        issue = services.issue_create(actor=request.user, project=project, **fields)
        location = request.build_absolute_uri(reverse("issue-detail", kwargs={"pk": issue.pk}))
        return self._issue_response(issue, status.HTTP_201_CREATED, Location=location)

    @extend_schema(
        responses={200: IssueDetailSerializer, 304: OpenApiResponse(description="Not modified")},
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)],
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        try:
            issue = selectors.issue_detail(self.access, issue_id=self._issue_id())
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
        data = IssueUpdateInputSerializer(data=request.data, context={"request": request, "issue_id": issue_id})
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        version = changes.pop("version", None)
        from_if_match = version is None
        if from_if_match:
            if_match = request.headers.get("If-Match")
            if if_match is None:
                raise ValidationError(VERSION_REQUIRED)
            version = parse_etag(if_match)
            if version is None:
                raise ValidationError({"version": ['If-Match must be a quoted version such as "3".']})
        # A stale version is a VersionConflict, answered by api.exceptions: 409, or 412 when it came from If-Match.
        try:
            issue, _ = services.issue_update(
                issue_id=issue_id, actor=request.user, expected_version=version, changes=changes, access=self.access
            )
        except VersionConflict as conflict:
            conflict.precondition = from_if_match
            raise
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
        issue, _ = services.issue_update(
            issue_id=issue_id,
            actor=request.user,
            expected_version=data.validated_data.get("version"),
            changes={"labels": data.validated_data["labels"]},
            access=self.access,
        )
        return self._issue_response(issue)

    @extend_schema(methods=["GET"], responses={200: CommentSerializer(many=True)}, filters=False)
    @extend_schema(methods=["POST"], request=CommentInputSerializer, responses={201: CommentSerializer})
    @action(detail=True, methods=["get", "post"], url_path="comments")
    @idempotent
    def comments(self, request: Request, pk: str) -> Response:
        issue_id = self._issue_id()
        project_id = self._issue_project_id(issue_id)
        if request.method == "POST":
            self.access.require(project_id, Action.WRITE)
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
        self._issue_project_id(issue_id)
        page = self.paginate_queryset(selectors.issue_timeline(issue_id=issue_id))
        return self.get_paginated_response(IssueEventSerializer(page, many=True).data)

    def filter_queryset(self, queryset: Any) -> Any:
        if self.action in ("comments", "timeline"):
            return queryset
        if not any(name in self.request.query_params for name in IssueFilterSet.base_filters):
            # No filter asked for: every filter is a no-op on an empty value, so the FilterSet would only
            # build and validate an empty form (a third of an unfiltered list's Python time) to change nothing.
            return queryset
        # What DjangoFilterBackend.filter_queryset does (the same 400s), keeping the FilterSet: once its queryset
        # is built it knows whether the facet tally can count the result (``facets``).
        filterset = IssueFilterSet(data=self.request.query_params, queryset=queryset, request=self.request)
        if not filterset.is_valid():
            # (its stub says it returns a dict: it returns DRF's ValidationError, the one the backend raises)
            raise translate_validation(filterset.errors)  # type: ignore[misc]
        queryset = filterset.qs
        self.facets, self.counted_by = filterset.facets, filterset.counted_by
        return queryset
