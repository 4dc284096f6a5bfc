"""The Celery app: configured from Django's settings (the ``CELERY_*`` ones, docs/configuration.md), tasks found
in the installed apps' ``tasks`` modules. ``celery -A issue_tracker worker`` (``make worker``) runs them."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issue_tracker.settings")

app = Celery("issue_tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
