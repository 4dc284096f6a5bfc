"""Settings, all driven by environment variables with safe development defaults.

See docs/configuration.md for every variable.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"
    else:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off (set DJANGO_DEBUG=1 for development)."
        )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
if DEBUG and not os.environ.get("DJANGO_ALLOWED_HOSTS"):
    ALLOWED_HOSTS += ["testserver"]
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",  # login lockout (AXES_* below)
    "csp",  # Content-Security-Policy (CONTENT_SECURITY_POLICY below)
    "pgtrigger",  # Meta.triggers (the issue tally's triggers on Issue)
    "api",
    "issues",
    "reports",
    "hooks",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # outermost but one: every answer gets the policy header
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "api.middleware.ApiGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as axes requires: turns a locked-out login into its 429
]

ROOT_URLCONF = "issue_tracker.urls"
APPEND_SLASH = False  # every /api/ route answers with and without the slash; never redirect a write

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "issue_tracker.wsgi.application"

# Database: PostgreSQL only. DATABASE_URL, or in development (DJANGO_DEBUG=1) the embedded PostgreSQL that
# `make run` / `make db-start` start (devdb/, port EMBEDDED_PG_PORT).
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:
    if not DEBUG:
        raise ImproperlyConfigured("DATABASE_URL is required when DJANGO_DEBUG is off (postgres://user@host/db).")
    DATABASE_URL = (
        f"postgres://postgres@127.0.0.1:{os.environ.get('EMBEDDED_PG_PORT', '54329')}/"
        f"{os.environ.get('EMBEDDED_PG_DB', 'issue_tracker')}"
    )
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(f"DATABASE_URL must name a PostgreSQL database, not {DATABASES['default']['ENGINE']}.")
# Django turns psycopg's prepared statements off (prepare_threshold None) for the sake of transaction-mode poolers.
# Django's own queries never use them (client-side binding); only issues/fastpath/prepared.py asks for them, for
# the few statements every request runs. DB_PREPARED_STATEMENTS=0 turns them off again (PgBouncer in transaction
# mode before 1.21): those statements then run unprepared, with the same results.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
    5 if env_bool("DB_PREPARED_STATEMENTS", True) else None
)
# Every statement and every lock wait is bounded, so one slow query or one held row lock cannot occupy the
# workers for long: past the limit PostgreSQL cancels the statement and the API answers a JSON 503 with
# Retry-After (issues/exceptions.py). Milliseconds; 0 turns a limit off. The CSV import sets its own, longer
# budget for its transaction (IMPORT_STATEMENT_TIMEOUT_MS). Sent as startup options, so they cost no round trip
# (behind PgBouncer, list them in its ignore_startup_parameters or set them on the role).
# DB_LOCK_TIMEOUT_MS bounds the wait for a row lock. PostgreSQL's lock_timeout applies to each lock it waits for,
# and a writer queued behind another waiter on the same row waits twice (the tuple lock, then the holding
# transaction), so PostgreSQL gets half of it.
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 30_000)
DB_LOCK_TIMEOUT_MS = env_int("DB_LOCK_TIMEOUT_MS", 5_000)
# The planner's price of a random page read, relative to a sequential one (PostgreSQL's default, 4.0, models
# spinning disks). A tracker's working set is in memory or on SSD, where 1.1 is the usual setting; at 4.0 the
# planner scanned the whole label and project tables once per listed issue instead of probing their primary keys
# (the list's first page statement took 0.53 ms instead of 0.13 ms at 100,000 issues in 20 projects; figures in
# docs/performance.md, "Projects"). A string, sent like the timeouts; empty leaves the server's setting.
DB_RANDOM_PAGE_COST = os.environ.get("DB_RANDOM_PAGE_COST", "1.1").strip()
DATABASES["default"]["OPTIONS"]["options"] = " ".join(
    [
        DATABASES["default"]["OPTIONS"].get("options", ""),
        f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}",
        f"-c lock_timeout={(DB_LOCK_TIMEOUT_MS + 1) // 2}",
        f"-c random_page_cost={float(DB_RANDOM_PAGE_COST)}" if DB_RANDOM_PAGE_COST else "",
    ]
).strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The lockout check first: while locked out, authenticate() refuses even the right password.
AUTHENTICATION_BACKENDS = ["api.backends.LoginLockoutBackend", "api.backends.OneQueryPermissionBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Serve static files straight from the apps' folders, so no collectstatic step is needed to run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Request size limits. Bodies above API_MAX_BODY_BYTES get a JSON 413 (the import endpoint has its own).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
BULK_MAX_ITEMS = env_int("BULK_MAX_ITEMS", 1000)
# The project of issues and labels created without one (a client written before projects existed).
DEFAULT_PROJECT_KEY = os.environ.get("DEFAULT_PROJECT_KEY", "MAIN").strip().upper() or "MAIN"
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 20 * 1024 * 1024)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 200_000)
IDEMPOTENCY_TTL_SECONDS = env_int("IDEMPOTENCY_TTL_SECONDS", 24 * 60 * 60)  # Idempotency-Key replay window
# The import's transaction gets a longer statement and lock budget than a request (milliseconds, 0 = none).
IMPORT_STATEMENT_TIMEOUT_MS = env_int("IMPORT_STATEMENT_TIMEOUT_MS", 600_000)
# Retry-After (seconds) on a 503 that says the database is unavailable, busy or too slow.
DB_RETRY_AFTER_SECONDS = env_int("DB_RETRY_AFTER_SECONDS", 5)

# Celery (issue_tracker/celery.py; docs/webhooks.md, docs/deployment.md). With CELERY_BROKER_URL (Redis:
# redis://host:6379/0, RabbitMQ: amqp://user:password@host:5672//) tasks go to `celery -A issue_tracker worker`
# (`make worker`). Without it (the `make run` default) they run in the web process: a task handed off after a commit
# runs right then, in-process (CELERY_TASK_ALWAYS_EAGER), and a webhook retry on a timer thread of that process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Celery's Django fixup closes every database connection around each task (a new PostgreSQL connection per webhook
# delivery: 38% of a delivery's time); issue_tracker/celery.py closes them as Django does between requests instead.
CELERY_DB_REUSE_MAX = 2**62
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")  # deployments sharing one broker: one each
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves its message to be delivered again
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A hand-off to a broker that is down fails fast (the request has committed; the sweep hands the work off later).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis: a message not acknowledged within the visibility timeout is delivered again; it must exceed the longest
# countdown (the last webhook retry delay).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3 * 60 * 60),
    "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
}

# Webhooks (docs/webhooks.md). Targets on loopback/private/link-local/reserved addresses are refused unless
# WEBHOOK_ALLOW_PRIVATE_TARGETS=1. An attempt times out after WEBHOOK_TIMEOUT_SECONDS; a failed one is retried after
# each of WEBHOOK_RETRY_DELAYS (seconds; 5 delays = 6 attempts over about an hour), then the delivery is failed; after
# WEBHOOK_DISABLE_AFTER_FAILURES failed deliveries in a row the webhook is deactivated. Every WEBHOOK_SWEEP_SECONDS
# (beat) the sweep hands off deliveries due for more than WEBHOOK_SWEEP_GRACE_SECONDS (a failed hand-off).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_RETRY_DELAYS = [int(item) for item in env_list("WEBHOOK_RETRY_DELAYS", "30,120,300,900,2400")]
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 20)
WEBHOOK_SWEEP_SECONDS = env_int("WEBHOOK_SWEEP_SECONDS", 30)
WEBHOOK_SWEEP_GRACE_SECONDS = env_int("WEBHOOK_SWEEP_GRACE_SECONDS", 60)
# A retry due later than this is handed to the broker by the sweep when due, not as a countdown message now.
WEBHOOK_MAX_COUNTDOWN_SECONDS = env_int("WEBHOOK_MAX_COUNTDOWN_SECONDS", 900)
# The workers' relay hands committed deliveries to the broker on PostgreSQL's notification, and also this often.
WEBHOOK_RELAY_POLL_SECONDS = env_int("WEBHOOK_RELAY_POLL_SECONDS", 5)
# How long a claimed attempt holds its delivery: if its worker dies, the delivery is due again after this.
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 60)
# Jobs (docs/jobs.md): import and export run as a Celery task when asked to (``Prefer: respond-async``). Their files
# (the upload, the export) go to the storage ``STORAGES["jobs"]`` when configured, else a folder, JOBS_STORAGE_DIR.
# A running job beats its heart every JOBS_HEARTBEAT_SECONDS; the sweep (every JOBS_SWEEP_SECONDS) fails a running
# job silent for JOBS_LEASE_SECONDS (its worker died) and hands off again a job queued for JOBS_SWEEP_GRACE_SECONDS.
JOBS_STORAGE_DIR = os.environ.get("JOBS_STORAGE_DIR", str(BASE_DIR / "var" / "jobs"))
IMPORT_ASYNC_MAX_BYTES = env_int("IMPORT_ASYNC_MAX_BYTES", 200 * 1024 * 1024)
IMPORT_ASYNC_MAX_ROWS = env_int("IMPORT_ASYNC_MAX_ROWS", 2_000_000)
JOBS_IMPORT_BATCH_SIZE = env_int("JOBS_IMPORT_BATCH_SIZE", 0)  # 0: the import's own batch size
JOBS_HEARTBEAT_SECONDS = env_int("JOBS_HEARTBEAT_SECONDS", 10)
JOBS_LEASE_SECONDS = env_int("JOBS_LEASE_SECONDS", 60)
JOBS_SWEEP_SECONDS = env_int("JOBS_SWEEP_SECONDS", 30)
SEARCH_INDEX_SWEEP_SECONDS = env_int("SEARCH_INDEX_SWEEP_SECONDS", 30)
# Word-search results (count, first page's ids) each web process keeps while they hold (issues.search_cache); 0: off.
SEARCH_CACHE_ENTRIES = env_int("SEARCH_CACHE_ENTRIES", 256)
JOBS_SWEEP_GRACE_SECONDS = env_int("JOBS_SWEEP_GRACE_SECONDS", 60)
CELERY_BEAT_SCHEDULE = {
    "webhooks-sweep": {"task": "hooks.sweep", "schedule": float(WEBHOOK_SWEEP_SECONDS)},
    "jobs-sweep": {"task": "jobs.sweep", "schedule": float(JOBS_SWEEP_SECONDS)},
    # Search documents a large insert queued and whose hand-off was lost (issues.search_index).
    "search-index-sweep": {"task": "issues.index_search", "schedule": float(SEARCH_INDEX_SWEEP_SECONDS)},
}

REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["issues.access.ProjectPermission"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenOrBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DATETIME_FORMAT": "iso-8601",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [
        "api.throttling.AnonRateThrottle",
        "api.throttling.UserRateThrottle",
        "api.throttling.ScopedRateThrottle",
    ],
}


def env_rate(name: str, default: str) -> str | None:
    """A throttle rate such as ``100/minute``; ``off`` (or ``none``, ``0``) turns that throttle off."""
    value = os.environ.get(name, default).strip()
    return None if value.lower() in {"", "off", "none", "0"} else value


# Throttling (429 + Retry-After): fixed-window counters in the default cache, per user or per client address.
# Generous by default so that benchmarks are not throttled; POST /api/auth/token is much stricter.
THROTTLE_RATES = {
    "anon": env_rate("THROTTLE_ANON", "600/minute"),
    "user": env_rate("THROTTLE_USER", "20000/minute"),
    "auth": env_rate("THROTTLE_AUTH", "20/minute"),
}
# Behind a reverse proxy, the client address comes from X-Forwarded-For: set this to the number of proxies.
# 0 (the default) trusts no forwarded address: the client is REMOTE_ADDR, whatever X-Forwarded-For says.
REST_FRAMEWORK["NUM_PROXIES"] = env_int("DJANGO_NUM_PROXIES", 0)

# The cache (the throttles' counters): Redis when REDIS_URL is set, shared by every worker; else per process.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "issue_tracker"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "issue-tracker"}}

# HTTPS. Everything is off by default, so `make run` and the test client work over plain http.
# In production behind a TLS-terminating proxy set DJANGO_HTTPS=1 (turns on the defaults below) and
# DJANGO_SECURE_PROXY_SSL_HEADER=1 (trust the proxy's X-Forwarded-Proto: https). Each can be overridden.
HTTPS = env_bool("DJANGO_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", HTTPS)
# /api/ is never redirected (a redirected POST is a lost write): over plain http it answers a JSON 403
# (api/middleware.py), except /api/health, which load balancers probe over plain http.
SECURE_REDIRECT_EXEMPT = [r"^api(/|$)"]
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", HTTPS)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SPECTACULAR_SETTINGS = {
    "TITLE": "Issue Tracker API",
    "DESCRIPTION": "Issues, comments, labels, timeline, bulk changes, CSV import/export and reports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["api.openapi.drop_slashless_root"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.openapi.add_error_responses",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

import base64 as _base64  # noqa: E402 - the imports of the lockout and CSP blocks below
import datetime as _dt  # noqa: E402
import hashlib as _hashlib  # noqa: E402

from csp import constants as _csp_constants  # noqa: E402

# Login lockout (django-axes), see docs/security.md. Failed logins on the admin, /api-auth/login/ and
# POST /api/auth/token are counted in the database (axes' tables) per username+address and per address;
# AXES_FAILURE_LIMIT failures within the cool-off lock that pair (or address) for AXES_COOLOFF_MINUTES, the
# right password included, and each refused attempt starts the cool-off again. Unlock: manage.py axes_reset.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured(f"AXES_FAILURE_LIMIT must be at least 1, got {AXES_FAILURE_LIMIT}")
_axes_cooloff_minutes = env_int("AXES_COOLOFF_MINUTES", 15)  # 0: locked until axes_reset
AXES_COOLOFF_TIME = _dt.timedelta(minutes=_axes_cooloff_minutes) if _axes_cooloff_minutes > 0 else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_ON_SUCCESS = False  # a known password must not wipe the address's count of failures
AXES_LOCKOUT_CALLABLE = "api.backends.lockout_response"  # 429: JSON under /api/, else an HTML page
# The client address: REMOTE_ADDR, or with DJANGO_NUM_PROXIES > 0 the right-most-N X-Forwarded-For entry.
CLIENT_NUM_PROXIES = max(0, env_int("DJANGO_NUM_PROXIES", 0))
AXES_CLIENT_IP_CALLABLE = "api.backends.client_ip_address"
AXES_VERBOSE = False  # no start-up banner; failures are still logged (WARNING)

# Content-Security-Policy (django-csp 4) on every answer, see docs/security.md. Scripts only from this origin
# (the admin, the browsable API and Swagger UI load theirs as files; a template that needs an inline script
# gives it nonce="{{ request.csp_nonce }}"), plus one inline event handler by its hash: the browsable API's
# "Log out" link (rest_framework's optional_logout tag). Inline styles are allowed: the browsable API's and the
# login pages' templates use style attributes. No plugins, no framing, forms post only to this origin.
BROWSABLE_API_LOGOUT_ONCLICK = 'document.getElementById("logoutForm").submit()'
_logout_onclick_hash = _base64.b64encode(_hashlib.sha256(BROWSABLE_API_LOGOUT_ONCLICK.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", _csp_constants.NONCE, "'unsafe-hashes'", f"'sha256-{_logout_onclick_hash}'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
