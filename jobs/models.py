"""A job: an import or an export run by a worker (``jobs.tasks``), with its progress, its answer and its files."""

import uuid

from django.conf import settings
from django.db import models

from .storage import job_storage


class JobType(models.TextChoices):
    IMPORT = "import"
    EXPORT = "export"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Job(models.Model):
    """``params`` holds what the request asked (an import's format, mapping and dry_run; an export's query
    parameters), checked before the job was created. ``heartbeat_at`` is written every JOBS_HEARTBEAT_SECONDS by the
    worker running the job, through a connection of its own: a running job whose heartbeat is older than
    JOBS_LEASE_SECONDS lost its worker, and the sweep fails it. ``attempts`` counts the claims (a message delivered
    again after its worker died finds the job failed already and does nothing)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=10, choices=JobType.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    project = models.ForeignKey("issues.Project", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    params = models.JSONField(default=dict, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    upload = models.FileField(storage=job_storage, upload_to="uploads/", max_length=255, blank=True)
    file = models.FileField(storage=job_storage, upload_to="exports/", max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="jobs_job_owner_idx"),
            models.Index(fields=["status", "heartbeat_at"], name="jobs_job_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} job {self.pk} ({self.status})"
