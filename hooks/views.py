"""``/api/projects/{key}/webhooks`` and their deliveries: the project's maintainers and staff only. A project the
caller cannot see is a 404 on every route; a visible one where the caller is no maintainer is a 403
(``issues.access``, through ``ProjectRoutes.project``)."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from issues.access import Action
from issues.models import Project
from issues.views.common import parse_id
from issues.views.projects import PROJECT_KEY_PARAMETER, ProjectRoutes

from . import services
from .models import Webhook, WebhookDelivery
from .serializers import DeliveryDetailSerializer, DeliverySerializer, WebhookInputSerializer, WebhookSerializer

WEBHOOK_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A webhook id.")
WEBHOOK_ID_NESTED = OpenApiParameter("webhook_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="A webhook id.")
DELIVERY_ID = OpenApiParameter("pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="A delivery id.")
UUID_REGEX = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class WebhookRoutes(ProjectRoutes):
    def managed_project(self) -> Project:
        return self.project(self.kwargs["project_key"], Action.MANAGE)

    def webhook(self, project: Project, raw_id: str) -> Webhook:
        try:
            return Webhook.objects.select_related("project").get(pk=parse_id(raw_id), project_id=project.pk)
        except Webhook.DoesNotExist as exc:
            raise NotFound() from exc

    def webhook_response(self, webhook: Webhook, http_status: int = 200, *, secret: bool = False) -> Response:
        data = WebhookSerializer(webhook, context={"with_secret": secret}).data
        headers = None
        if http_status == status.HTTP_201_CREATED:
            location = reverse("webhook-detail", kwargs={"project_key": webhook.project.key, "pk": webhook.pk})
            headers = {"Location": self.request.build_absolute_uri(location)}
        return Response(data, status=http_status, headers=headers)

    def accepted(self, delivery: WebhookDelivery, project: Project) -> Response:
        location = reverse(
            "webhook-delivery-detail",
            kwargs={"project_key": project.key, "webhook_id": delivery.webhook_id, "pk": delivery.pk},
        )
        return Response(
            DeliverySerializer(delivery).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": self.request.build_absolute_uri(location)},
        )


@extend_schema_view(
    list=extend_schema(parameters=[PROJECT_KEY_PARAMETER], responses=WebhookSerializer(many=True)),
    create=extend_schema(
        parameters=[PROJECT_KEY_PARAMETER], request=WebhookInputSerializer, responses={201: WebhookSerializer}
    ),
    retrieve=extend_schema(parameters=[PROJECT_KEY_PARAMETER, WEBHOOK_ID], responses=WebhookSerializer),
    partial_update=extend_schema(
        parameters=[PROJECT_KEY_PARAMETER, WEBHOOK_ID], request=WebhookInputSerializer, responses=WebhookSerializer
    ),
    destroy=extend_schema(parameters=[PROJECT_KEY_PARAMETER, WEBHOOK_ID], responses={204: None}),
    rotate_secret=extend_schema(
        parameters=[PROJECT_KEY_PARAMETER, WEBHOOK_ID], request=None, responses=WebhookSerializer
    ),
    ping=extend_schema(
        parameters=[PROJECT_KEY_PARAMETER, WEBHOOK_ID], request=None, responses={202: DeliverySerializer}
    ),
)
class WebhookViewSet(WebhookRoutes):
    """A project's webhooks: its maintainers (and staff) list, create, change, delete, ping them and rotate their
    secrets. The secret is shown only by create and rotate-secret."""

    serializer_class = WebhookSerializer
    lookup_value_regex = r"[0-9]+"

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return WebhookInputSerializer if self.action in ("create", "partial_update") else WebhookSerializer

    def list(self, request: Request, project_key: str) -> Response:
        project = self.managed_project()
        page = self.paginate_queryset(
            Webhook.objects.filter(project_id=project.pk).select_related("project").order_by("id")
        )
        return self.get_paginated_response(WebhookSerializer(page, many=True).data)

    def create(self, request: Request, project_key: str) -> Response:
        project = self.managed_project()
        data = WebhookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = services.webhook_create(project=project, **data.validated_data)
        webhook.project = project
        return self.webhook_response(webhook, status.HTTP_201_CREATED, secret=True)

    def get_object(self) -> Webhook:
        return self.webhook(self.managed_project(), self.kwargs["pk"])

    def retrieve(self, request: Request, project_key: str, pk: str) -> Response:
        return self.webhook_response(self.get_object())

    def partial_update(self, request: Request, project_key: str, pk: str) -> Response:
        webhook = self.get_object()
        data = WebhookInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return self.webhook_response(services.webhook_update(webhook=webhook, **data.validated_data))

    def destroy(self, request: Request, project_key: str, pk: str) -> Response:
        services.webhook_delete(webhook=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, project_key: str, pk: str) -> Response:
        """A new secret (in the answer, and only there); the old one signs nothing from now on."""
        return self.webhook_response(services.webhook_rotate_secret(webhook=self.get_object()), secret=True)

    @action(detail=True, methods=["post"])
    def ping(self, request: Request, project_key: str, pk: str) -> Response:
        """Queue a ``ping`` delivery: 202, ``Location`` the delivery."""
        project = self.managed_project()
        webhook = self.webhook(project, pk)
        return self.accepted(services.webhook_ping(webhook=webhook, project=project, actor=request.user), project)


@extend_schema_view(
    list=extend_schema(parameters=[PROJECT_KEY_PARAMETER, WEBHOOK_ID_NESTED], responses=DeliverySerializer(many=True)),
    retrieve=extend_schema(
        parameters=[PROJECT_KEY_PARAMETER, WEBHOOK_ID_NESTED, DELIVERY_ID], responses=DeliveryDetailSerializer
    ),
    redeliver=extend_schema(
        parameters=[PROJECT_KEY_PARAMETER, WEBHOOK_ID_NESTED, DELIVERY_ID],
        request=None,
        responses={202: DeliverySerializer},
    ),
)
class DeliveryViewSet(WebhookRoutes):
    """A webhook's delivery log, newest first, and redelivery (a new delivery of the same event)."""

    serializer_class = DeliverySerializer
    lookup_value_regex = UUID_REGEX

    def list(self, request: Request, project_key: str, webhook_id: str) -> Response:
        webhook = self.webhook(self.managed_project(), webhook_id)
        deliveries = WebhookDelivery.objects.filter(webhook_id=webhook.pk).order_by("-created_at", "-id")
        page = self.paginate_queryset(deliveries.defer("payload"))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    def get_object(self) -> WebhookDelivery:
        webhook = self.webhook(self.managed_project(), self.kwargs["webhook_id"])
        try:
            delivery = WebhookDelivery.objects.get(pk=self.kwargs["pk"], webhook_id=webhook.pk)
        except (WebhookDelivery.DoesNotExist, ValueError) as exc:
            raise NotFound() from exc
        delivery.webhook = webhook
        return delivery

    def retrieve(self, request: Request, project_key: str, webhook_id: str, pk: str) -> Response:
        return Response(DeliveryDetailSerializer(self.get_object()).data)

    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, project_key: str, webhook_id: str, pk: str) -> Response:
        """Send the event again as a new delivery: 202, ``Location`` the new delivery."""
        delivery = self.get_object()
        return self.accepted(services.delivery_redeliver(delivery=delivery), delivery.webhook.project)
