"""Projects and their members: ``/api/projects`` and ``/api/projects/{key}/members``.

A project the caller cannot see does not exist for them: every route about it answers 404, never 403
(``Access.require``); a visible one whose role is too low answers 403. So the routes that name a project check the
caller's role in that project themselves, rather than through ``permission_map`` (which would answer 403 before
the project is known). Creating a project is for staff only.
"""

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from .. import selectors, services
from ..access import STAFF_ONLY, Access, Action, access_for
from ..idempotency import idempotent
from ..models import Membership, Project
from ..serializers import (
    MembershipInputSerializer,
    MembershipSerializer,
    ProjectCreateInputSerializer,
    ProjectSerializer,
    ProjectUpdateInputSerializer,
)
from .common import ID_REGEX, parse_id

# A project key in a path, any case (keys match ignoring case); anything else is no route: a JSON 404.
PROJECT_KEY_REGEX = r"[A-Za-z][A-Za-z0-9]{1,9}"
MEMBERS_PREFIX = rf"projects/(?P<project_key>{PROJECT_KEY_REGEX})/members"

KEY_PARAMETER = OpenApiParameter(
    "key", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=f"^{PROJECT_KEY_REGEX}$", description="ignoring case"
)
PROJECT_KEY_PARAMETER = OpenApiParameter(
    "project_key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=f"^{PROJECT_KEY_REGEX}$",
    description="The project's key, ignoring case.",
)
USER_ID_PARAMETER = OpenApiParameter("user_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A user id.")
LAST_MAINTAINER = OpenApiResponse(
    description='The user is the project\'s last maintainer (`{"detail", "code": "last_maintainer"}`).'
)


class ProjectRoutes(viewsets.GenericViewSet):
    """What the project routes share: the caller's Access and the project named in the path."""

    queryset = Project.objects.none()
    filter_backends: list = []

    @property
    def access(self) -> Access:
        return access_for(self.request.user)

    def project(self, key: str, action: Action, *, whole: bool = False) -> Project:
        """The project ``key`` names (ignoring case): 404 when the caller cannot see it (or there is none), 403 when
        their role there does not allow ``action``. Its id and key only (no query, for a caller who is not staff),
        unless ``whole``."""
        try:
            project = (
                selectors.visible_projects(self.access).get(key=key.upper())
                if whole
                else self.access.project_by_key(key)
            )
        except Project.DoesNotExist as exc:
            raise NotFound() from exc
        self.access.require(project.pk, action)
        return project

    def project_response(self, project: Project, http_status: int = status.HTTP_200_OK, **headers: str) -> Response:
        data = ProjectSerializer(project, context={"access": self.access}).data
        return Response(data, status=http_status, headers=headers or None)


@extend_schema_view(
    retrieve=extend_schema(parameters=[KEY_PARAMETER]),
)
class ProjectViewSet(ProjectRoutes):
    """Projects: the ones the caller can see, by key; staff create them, their maintainers change them."""

    serializer_class = ProjectSerializer
    lookup_field = "key"
    lookup_value_regex = PROJECT_KEY_REGEX
    permission_map = {"create": STAFF_ONLY}

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return {"create": ProjectCreateInputSerializer, "partial_update": ProjectUpdateInputSerializer}.get(
            self.action or "", ProjectSerializer
        )

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "access": self.access}

    def list(self, request: Request) -> Response:
        """The projects the caller can see, by key, each with the caller's role in it."""
        page = self.paginate_queryset(selectors.visible_projects(self.access))
        return self.get_paginated_response(ProjectSerializer(page, many=True, context={"access": self.access}).data)

    @extend_schema(request=ProjectCreateInputSerializer, responses={201: ProjectSerializer})
    @idempotent
    def create(self, request: Request) -> Response:
        """Create a project (staff only); ``visibility`` is ``private`` unless given."""
        data = ProjectCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(**data.validated_data)
        location = request.build_absolute_uri(reverse("project-detail", kwargs={"key": project.key}))
        return self.project_response(project, status.HTTP_201_CREATED, Location=location)

    def get_object(self) -> Project:
        return self.project(self.kwargs["key"], Action.READ, whole=True)

    def retrieve(self, request: Request, key: str) -> Response:
        return self.project_response(self.get_object())

    @extend_schema(parameters=[KEY_PARAMETER], request=ProjectUpdateInputSerializer, responses={200: ProjectSerializer})
    def partial_update(self, request: Request, key: str) -> Response:
        """Change the project's name, description or visibility (its maintainers and staff)."""
        project = self.project(key, Action.MANAGE)
        data = ProjectUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self.project_response(services.project_update(project=project, **data.validated_data))


@extend_schema_view(
    list=extend_schema(parameters=[PROJECT_KEY_PARAMETER]),
    retrieve=extend_schema(parameters=[PROJECT_KEY_PARAMETER, USER_ID_PARAMETER]),
    update=extend_schema(
        parameters=[PROJECT_KEY_PARAMETER, USER_ID_PARAMETER],
        request=MembershipInputSerializer,
        responses={200: MembershipSerializer, 201: MembershipSerializer, 409: LAST_MAINTAINER},
    ),
    destroy=extend_schema(
        parameters=[PROJECT_KEY_PARAMETER, USER_ID_PARAMETER], responses={204: None, 409: LAST_MAINTAINER}
    ),
)
class ProjectMemberViewSet(ProjectRoutes):
    """A project's members: who can see the project reads them; its maintainers add, change and remove them. A
    project keeps at least one maintainer (a 409 otherwise)."""

    serializer_class = MembershipSerializer
    lookup_field = "user_id"
    lookup_value_regex = ID_REGEX

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return MembershipInputSerializer if self.action == "update" else MembershipSerializer

    def list(self, request: Request, project_key: str) -> Response:
        """The project's members, by username (paginated like every list)."""
        project = self.project(project_key, Action.READ)
        page = self.paginate_queryset(selectors.project_members(project.pk))
        return self.get_paginated_response(MembershipSerializer(page, many=True).data)

    def get_object(self) -> Membership:
        """The member in the path (OPTIONS asks for it too): 404 when the user is not one."""
        project = self.project(self.kwargs["project_key"], Action.READ)
        try:
            return selectors.project_members(project.pk).get(user_id=parse_id(self.kwargs["user_id"]))
        except Membership.DoesNotExist as exc:
            raise NotFound() from exc

    def retrieve(self, request: Request, project_key: str, user_id: str) -> Response:
        return Response(MembershipSerializer(self.get_object()).data)

    def update(self, request: Request, project_key: str, user_id: str) -> Response:
        """Give the user this role in the project, adding them if they are not a member (201, else 200). An unknown
        or deactivated user is a 404; demoting the last maintainer is a 409."""
        project = self.project(project_key, Action.MANAGE)
        uid = parse_id(user_id)
        data = MembershipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership, created = services.membership_set(project=project, user_id=uid, **data.validated_data)
        body = MembershipSerializer(membership).data
        if not created:
            return Response(body)
        location = request.build_absolute_uri(
            reverse("project-member-detail", kwargs={"project_key": project.key, "user_id": uid})
        )
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    def destroy(self, request: Request, project_key: str, user_id: str) -> Response:
        """Remove the user from the project; removing its last maintainer is a 409."""
        project = self.project(project_key, Action.MANAGE)
        services.membership_remove(project=project, user_id=parse_id(user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
