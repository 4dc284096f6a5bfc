"""``/api/jobs``: the caller's own jobs, newest first; ``/api/jobs/{id}`` and its ``/file`` (an export's CSV). A
job is seen by whoever started it and by staff; for anyone else it does not exist (404)."""

from typing import Any

from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from issues.views.common import JSONErrorsContentNegotiation

from .models import Job
from .serializers import JobSerializer


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = JobSerializer
    filter_backends: list = []
    lookup_value_regex = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def get_queryset(self) -> Any:
        jobs = Job.objects.order_by("-created_at", "-id")
        if self.action == "list" or not self.request.user.is_staff:
            jobs = jobs.filter(created_by_id=self.request.user.pk)
        return jobs

    def get_object(self) -> Job:
        try:
            return self.get_queryset().get(pk=self.kwargs["pk"])
        except Job.DoesNotExist as exc:
            raise NotFound() from exc

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(description="the export's CSV")})
    @action(detail=True, methods=["get"], url_path="file", content_negotiation_class=JSONErrorsContentNegotiation)
    def file(self, request: Request, pk: str) -> FileResponse:
        job = self.get_object()
        if not job.file:
            raise NotFound()
        response = FileResponse(job.file.open("rb"), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="issues.csv"'
        return response
