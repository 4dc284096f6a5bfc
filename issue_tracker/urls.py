"""Top-level routes: the API under /api/ (every path with or without a trailing slash) and the admin."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from issues import views as issue_views

from .middleware import is_api_path


@csrf_exempt  # else an unsafe method on an unknown /api/ path meets the CSRF check's HTML 403
def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


class JsonErrorsMixin:
    """The schema and docs views render YAML and HTML; their errors (405, 406, 404) are JSON all the same."""

    def handle_exception(self, exc: Exception) -> JsonResponse:
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


api_patterns = [
    re_path(r"^$", issue_views.api_root, name="api-root"),
    re_path(r"^auth/token/?$", issue_views.ObtainTokenView.as_view(), name="auth-token"),
    re_path(r"^health/?$", issue_views.health, name="health"),
    re_path(r"^schema/?$", PublicSchemaView.as_view(), name="schema"),
    re_path(r"^docs/?$", PublicDocsView.as_view(url_name="schema"), name="docs"),
    path("reports/", include("reports.urls")),
    path("", include("issues.urls")),
    re_path(r"^.*$", api_not_found),  # an unknown /api/ path is a JSON 404, also with DEBUG on
]

urlpatterns = [
    re_path(r"^api$", issue_views.api_root),
    path("api/", include(api_patterns)),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),  # log in/out for the browsable API (outside /api/)
]


def handler404(request: HttpRequest, exception: Exception) -> JsonResponse:
    if is_api_path(request.path_info):
        return api_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> JsonResponse:
    if is_api_path(request.path_info):
        return JsonResponse({"detail": "A server error occurred.", "code": "server_error"}, status=500)
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request: HttpRequest, exception: Exception) -> JsonResponse:
    if is_api_path(request.path_info):
        return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)
