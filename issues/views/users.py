"""Users: ``/api/users``, so clients can find assignee ids."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors
from ..serializers import UserSerializer
from .common import ID_REGEX, parse_id


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Users, so clients can find assignee ids. ``?search=`` matches username and name."""

    serializer_class = UserSerializer
    lookup_value_regex = ID_REGEX
    filter_backends: list = []

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
