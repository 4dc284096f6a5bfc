"""Settings of the bench server only: the product's settings, with the floors' URLconf on top.

The floors (bench/floor_urls.py) are never part of the product's URLs; only a gunicorn started with
``DJANGO_SETTINGS_MODULE=bench.settings`` serves them, next to the unchanged product routes.
"""

import warnings

from issue_tracker.settings import *  # noqa: F403

# WhiteNoise warns once per worker that STATIC_ROOT is missing (no collectstatic for an API bench).
warnings.filterwarnings("ignore", message="No directory at")

ROOT_URLCONF = "bench.floor_urls"

# Throttling stays in the request path (its cost is part of what is measured), at rates wrk cannot reach
# in a run, so no request is refused; THROTTLE_USER / THROTTLE_ANON still override them.
THROTTLE_RATES = {
    **THROTTLE_RATES,  # noqa: F405
    "user": env_rate("THROTTLE_USER", "100000000/hour"),  # noqa: F405
    "anon": env_rate("THROTTLE_ANON", "100000000/hour"),  # noqa: F405
}
