"""Top-level routes: the API under /api/ (api/urls.py), the admin, and the browsable API's login."""

from django.contrib import admin
from django.urls import include, path, re_path

from api import views as api_views

urlpatterns = [
    re_path(r"^api$", api_views.api_root),
    path("api/", include("api.urls")),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),  # log in/out for the browsable API (outside /api/)
]

# JSON for /api/ paths, Django's pages elsewhere.
handler400 = api_views.handler400
handler404 = api_views.handler404
handler500 = api_views.handler500
