"""Labels: ``/api/labels``. A label belongs to a project: the list shows those of the projects the caller can see,
and only the project's maintainers create, rename and delete its labels."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors, services
from ..access import Access, Action, access_for
from ..filters import FILTER_MAX_VALUES, ProjectKeysField, project_ids_param
from ..idempotency import idempotent
from ..models import Label
from ..params import split_values
from ..serializers import LabelInputSerializer, LabelSerializer, LabelUpdateInputSerializer
from .common import ID_REGEX, parse_id

PROJECT_PARAM = OpenApiParameter(
    "project",
    str,
    many=True,
    required=False,
    description="Only the labels of these projects (keys, repeatable or comma list). An unknown key is a 400.",
)


class LabelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Labels of the projects the caller can see: names unique in their project ignoring case; the project's
    maintainers create, rename and delete them. A label of a project the caller cannot see is a 404."""

    serializer_class = LabelSerializer
    lookup_value_regex = ID_REGEX
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    # What a route needs in at least one project (issues.access.ProjectPermission). Creating needs the maintainer
    # role somewhere; the project named in the body is checked by the action. Renaming and deleting need it in the
    # label's project, which only the action knows: a label of a project the caller cannot see is a 404 like any
    # missing one (never a 403, which a route-level check would answer first), one they only see a 403. Reads need
    # only authentication: the selector scopes them.
    permission_map = {"create": Action.MANAGE}

    @property
    def access(self) -> Access:
        return access_for(self.request.user)

    def get_queryset(self) -> Any:
        return selectors.label_list(self.access)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """The list narrowed by ``?project=`` (parsed as the issue list's ``project`` filter is)."""
        if self.action != "list" or "project" not in self.request.query_params:
            return queryset
        field = ProjectKeysField(max_values=FILTER_MAX_VALUES["project"], required=False)
        try:
            keys = field.clean(split_values(self.request.query_params.getlist("project")))
        except DjangoValidationError as exc:
            raise ValidationError({"project": exc.messages}) from exc
        if not keys:
            return queryset
        return queryset.filter(project_id__any=project_ids_param(self.request, keys))

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {"create": LabelInputSerializer, "partial_update": LabelUpdateInputSerializer}.get(
            self.action, LabelSerializer
        )

    def get_object(self) -> Label:
        self.kwargs["pk"] = parse_id(self.kwargs["pk"])
        return super().get_object()

    def _label_response(self, label_id: int, http_status: int = status.HTTP_200_OK, **headers: str) -> Response:
        try:
            label = selectors.label_list(self.access).get(pk=label_id)
        except Label.DoesNotExist as exc:  # deleted by someone else since this request wrote it
            raise NotFound() from exc
        return Response(LabelSerializer(label).data, status=http_status, headers=headers)

    @extend_schema(parameters=[PROJECT_PARAM])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=LabelInputSerializer, responses={201: LabelSerializer})
    @idempotent
    def create(self, request: Request) -> Response:
        data = LabelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        project = self.access.project_to_write(fields.pop("project", None), Action.MANAGE)
        label = services.label_create(project_id=project.pk, **fields)
        label.project_key = project.key  # type: ignore[attr-defined]  # what label_list annotates
        location = request.build_absolute_uri(reverse("label-detail", kwargs={"pk": label.pk}))
        # Rendered from what was written (a new label is on no issue), not read back: it may be deleted already.
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(request=LabelUpdateInputSerializer, responses={200: LabelSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        label = self.get_object()
        self.access.require(label.project_id, Action.MANAGE)
        data = LabelUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.label_update(label=label, **data.validated_data)
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
        self.access.require(label.project_id, Action.MANAGE)
        services.label_delete(label=label, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
