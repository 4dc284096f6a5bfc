"""Routes of /api/reports/…; each path answers with and without a trailing slash."""

from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^top-assignees/?$", views.TopAssigneesView.as_view(), name="report-top-assignees"),
    re_path(r"^latency/?$", views.LatencyView.as_view(), name="report-latency"),
    re_path(r"^throughput/?$", views.ThroughputView.as_view(), name="report-throughput"),
]
