"""The platform's own endpoints: the API root, the token endpoint, health, the schema and its docs, and JSON for
every error Django would otherwise render as HTML under /api/."""

from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from issues.fastpath.session import database_reachable
from issues.serializers import AuthTokenInputSerializer, TokenSerializer

from .middleware import is_api_path


class ObtainTokenView(APIView):
    """``POST /api/auth/token`` with ``{"username", "password"}`` → ``{"token"}``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = AuthTokenInputSerializer
    throttle_scope = "auth"  # THROTTLE_RATES["auth"]: stricter than the rest, against password guessing

    @extend_schema(request=AuthTokenInputSerializer, responses={200: TokenSerializer})
    def post(self, request: Request) -> Response:
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
        "projects": "project-list",
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


@csrf_exempt  # else an unsafe method on an unknown /api/ path meets the CSRF check's HTML 403
def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


class JsonErrorsMixin:
    """The schema and docs views render YAML and HTML; their errors (405, 406, 404) are JSON all the same."""

    def handle_exception(self, exc: Exception) -> Any:
        response = super().handle_exception(exc)  # type: ignore[misc]
        json_response = JsonResponse(dict(response.data), status=response.status_code)
        for header in ("Allow", "WWW-Authenticate", "Retry-After"):
            if header in response:
                json_response[header] = response[header]
        return json_response


class PublicSchemaView(JsonErrorsMixin, SpectacularAPIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class PublicDocsView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served as a file (``?script``): the CSP allows no inline script."""

    authentication_classes: list = []
    permission_classes = [AllowAny]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path_info):
        return api_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path_info):
        return JsonResponse({"detail": "A server error occurred.", "code": "server_error"}, status=500)
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path_info):
        return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)
