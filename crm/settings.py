"""Settings for Goldfish, read from the environment.

Embedded defaults (no variables set): SQLite under var/, local-memory cache and
Celery tasks run in-process after commit. With DATABASE_URL and REDIS_URL set,
the same code runs on PostgreSQL, a Redis cache and a real Celery broker.
"""

import os
from pathlib import Path

import dj_database_url
import phonenumbers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CRM_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and envbool("CRM_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # Development and test only; `check --deploy` flags it, so production sets one.
    SECRET_KEY = "django-insecure-goldfish-development-key-not-for-production"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

# HTTPS hardening: on by default in production (DEBUG off); TLS is usually
# terminated by a proxy that sets X-Forwarded-Proto.
HTTPS = envbool("CRM_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crm",
    "context",
]

MIDDLEWARE = [
    # Issue 11: an oversized body is refused (413 JSON) before anything reads it.
    "crm.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Issue 11: a page whose database is unreachable answers 503 JSON with Retry-After.
    "crm.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "context.urls"
WSGI_APPLICATION = "crm.wsgi.application"

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

# --- Database -----------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "goldfish.sqlite3",
            # Readers do not block the writer; the wait covers concurrent writes.
            "OPTIONS": {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})
    # psycopg 3 server-side binding lets PostgreSQL prepare the hot statements.
    DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
    # ...but only when a threshold is set: Django's default (None) never prepares. psycopg's
    # own default: a statement is prepared on its 5th execution on a connection.
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Issue 11: request bodies, dependency timeouts -------------------------------
# The largest request body (bytes): a declared larger one is a 413 JSON before it is read.
# The API's JSON parser caps JSON bodies lower still (crm/parsers.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("CRM_MAX_BODY_BYTES", 1024 * 1024)
# Socket connect/read timeout for every Redis call made while a request waits (cache,
# throttles, /readyz, broker publish): a frozen Redis costs a request this much, once,
# then the breakers skip it.
CRM_REDIS_TIMEOUT_MS = envint("CRM_REDIS_TIMEOUT_MS", 150)

# --- Cache, broker, tasks ------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "goldfish",
            "TIMEOUT": 300,
            # A Redis that is down or unreachable fails fast rather than hanging requests.
            "OPTIONS": {
                "socket_connect_timeout": CRM_REDIS_TIMEOUT_MS / 1000,
                "socket_timeout": CRM_REDIS_TIMEOUT_MS / 1000,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
# Unset REDIS_URL: tasks run in-process (after commit, as with a real broker).
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker that is down must not hang the request that enqueues: fail fast,
# the outbox sweep sends the message later.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2, "max_retries": 1}
CELERY_TASK_PUBLISH_RETRY = False
# Periodic tasks, run by one `celery -A crm beat` process.
CELERY_BEAT_SCHEDULE: dict = {
    # Overdue complaint follow-ups reach the next level within a minute of their deadline.
    "escalate-overdue-follow-ups": {"task": "crm.follow_ups_escalate", "schedule": 60.0},
    # Feedback stored while the broker was down gets its workflow soon after the broker returns.
    "feedback-outbox-sweep": {"task": "crm.feedback_outbox_sweep", "schedule": 30.0},
}
CELERY_TIMEZONE = "UTC"

# --- Auth, API -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so an anonymous API call gets 401 with WWW-Authenticate.
        "crm.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["crm.permissions.IsAgent"],
    "DEFAULT_PARSER_CLASSES": ["crm.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "crm.api_schema.AutoSchema",
    "EXCEPTION_HANDLER": "crm.exceptions.api_exception_handler",
    # Throttles key on REMOTE_ADDR; behind N trusted proxies set CRM_NUM_PROXIES=N (X-Forwarded-For).
    "NUM_PROXIES": envint("CRM_NUM_PROXIES", 0),
    "DEFAULT_THROTTLE_RATES": {
        # Per client address; an empty value turns the throttle off (benchmarks from one address).
        "feedback": os.environ.get("CRM_FEEDBACK_THROTTLE", "30/minute") or None,
        # Password guessing on the token endpoint.
        "login": os.environ.get("CRM_LOGIN_THROTTLE", "20/minute") or None,
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Goldfish customer memory API",
    "DESCRIPTION": "Customer memory and screen-pop lookup for contact centres.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from this service: the docs work on a closed network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Issue 11: drf-spectacular's enum hook, then ours (crm/api_schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "crm.api_schema.collapse_blank_branches",
        "crm.api_schema.document_rules_beyond_the_schema",
    ],
}

# --- Domain settings -------------------------------------------------------------
CRM_DEFAULT_PHONE_REGION = os.environ.get("CRM_DEFAULT_PHONE_REGION", "US").upper()
if CRM_DEFAULT_PHONE_REGION not in phonenumbers.SUPPORTED_REGIONS:
    # A typo here would make every national number unreadable; refuse to start instead.
    raise ImproperlyConfigured(
        f"CRM_DEFAULT_PHONE_REGION must be a region code like US or GB, got {CRM_DEFAULT_PHONE_REGION!r}"
    )
# How long a supervisor has to act on a complaint before it escalates.
CRM_RECOVERY_DEADLINE_HOURS = envint("CRM_RECOVERY_DEADLINE_HOURS", 24)
# Window for repeat-contact and recent-complaint flags and recurring problems.
CRM_REPEAT_WINDOW_DAYS = envint("CRM_REPEAT_WINDOW_DAYS", 30)
# Durable by default: the screen-pop's write (new interaction + audit row) waits for the
# WAL flush like every other write. true = commit without waiting, faster, but a
# PostgreSQL crash can lose the last ~0.6 s of lookups and their audit rows; see
# crm/card.py.
CRM_LOOKUP_ASYNC_COMMIT = envbool("CRM_LOOKUP_ASYNC_COMMIT", False)

# --- E-mail ----------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
# For EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend: the directory it writes to.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "goldfish@localhost")

# --- I18N, static ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
