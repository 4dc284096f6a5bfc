"""Labels: ``/api/labels``."""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors, services
from ..access import access_for
from ..idempotency import idempotent
from ..models import Label
from ..serializers import LabelInputSerializer, LabelSerializer, LabelUpdateInputSerializer
from .common import ID_REGEX, parse_id


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
        return selectors.label_list(access_for(self.request.user))

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {"create": LabelInputSerializer, "partial_update": LabelUpdateInputSerializer}.get(
            self.action, LabelSerializer
        )

    def get_object(self) -> Label:
        self.kwargs["pk"] = parse_id(self.kwargs["pk"])
        return super().get_object()

    def _label_response(self, label_id: int, http_status: int = status.HTTP_200_OK, **headers: str) -> Response:
        try:
            label = selectors.label_list(access_for(self.request.user)).get(pk=label_id)
        except Label.DoesNotExist as exc:  # deleted by someone else since this request wrote it
            raise NotFound() from exc
        return Response(LabelSerializer(label).data, status=http_status, headers=headers)

    @extend_schema(request=LabelInputSerializer, responses={201: LabelSerializer})
    @idempotent
    def create(self, request: Request) -> Response:
        data = LabelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        label = services.label_create(**data.validated_data)
        location = request.build_absolute_uri(reverse("label-detail", kwargs={"pk": label.pk}))
        # Rendered from what was written (a new label is on no issue), not read back: it may be deleted already.
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(request=LabelUpdateInputSerializer, responses={200: LabelSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        label = self.get_object()
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
        services.label_delete(label=label, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
