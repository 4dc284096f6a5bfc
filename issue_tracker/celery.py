"""The Celery app: configured from Django's settings (the ``CELERY_*`` ones, docs/configuration.md), tasks found
in the installed apps' ``tasks`` modules. ``celery -A issue_tracker worker`` (``make worker``) runs them."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issue_tracker.settings")

app = Celery("issue_tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender: Any = None, **kwargs: Any) -> None:
    """Database connections live across tasks as they live across requests: closed after an error, past
    ``DB_CONN_MAX_AGE`` or a failed health check (``CELERY_DB_REUSE_MAX`` keeps Celery's own fixup from closing them
    around every task). A task run eagerly inside a request leaves them to the request's own cycle."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections as close_old

    close_old()
