"""WSGI entry point (gunicorn issue_tracker.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issue_tracker.settings")
application = get_wsgi_application()
