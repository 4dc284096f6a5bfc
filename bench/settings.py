"""Settings of the bench server only: the product's settings, with the floors' URLconf on top.

The floors (bench/floor_urls.py) are never part of the product's URLs; only a gunicorn started with
``DJANGO_SETTINGS_MODULE=bench.settings`` serves them, next to the unchanged product routes.
"""

import warnings

from issue_tracker.settings import *  # noqa: F403

# WhiteNoise warns once per worker that STATIC_ROOT is missing (no collectstatic for an API bench).
warnings.filterwarnings("ignore", message="No directory at")

ROOT_URLCONF = "bench.floor_urls"
