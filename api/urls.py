"""Routes under /api/ (every path with or without a trailing slash): the platform's own, the tracker's and the
reports; an unknown /api/ path is a JSON 404, also with DEBUG on."""

from django.urls import include, path, re_path

from . import views

urlpatterns = [
    re_path(r"^$", views.api_root, name="api-root"),
    re_path(r"^auth/token/?$", views.ObtainTokenView.as_view(), name="auth-token"),
    re_path(r"^health/?$", views.health, name="health"),
    re_path(r"^schema/?$", views.PublicSchemaView.as_view(), name="schema"),
    re_path(r"^docs/?$", views.PublicDocsView.as_view(url_name="schema"), name="docs"),
    path("reports/", include("reports.urls")),
    path("", include("issues.urls")),
    path("", include("hooks.urls")),
    path("", include("jobs.urls")),
    re_path(r"^.*$", views.api_not_found),
]
