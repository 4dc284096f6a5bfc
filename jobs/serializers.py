"""A job as the API shows it (``GET /api/jobs/{id}``, the 202 of an async import or export)."""

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from issues.serializers.issues import iso_datetime

from .models import Job


class JobSerializer(serializers.Serializer):
    """Read-only; the fields below are what the schema shows, ``to_representation`` what the API answers."""

    id = serializers.UUIDField()
    type = serializers.CharField(help_text="import | export")
    status = serializers.CharField(help_text="queued | running | succeeded | failed")
    progress = serializers.DictField(child=serializers.IntegerField(allow_null=True))
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    file = serializers.URLField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, job: Job) -> dict[str, Any]:
        request = self.context.get("request")
        file_url = None
        if job.file:
            path = reverse("job-file", kwargs={"pk": job.pk})
            file_url = request.build_absolute_uri(path) if request is not None else path
        return {
            "id": str(job.pk),
            "type": job.type,
            "status": job.status,
            "progress": {"done": job.progress_done, "total": job.progress_total},
            "result": job.result,
            "error": job.error,
            "file": file_url,
            "created_at": iso_datetime(job.created_at),
            "started_at": iso_datetime(job.started_at),
            "finished_at": iso_datetime(job.finished_at),
        }


def accepted_body(job: Job, request: Any) -> dict[str, Any]:
    return {"job": JobSerializer(job, context={"request": request}).data}
