"""Routes of /api/reports/…; each path answers with and without a trailing slash."""

urlpatterns: list = []
