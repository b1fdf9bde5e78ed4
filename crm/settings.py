"""Settings for Goldfish, read from the environment.

Embedded defaults (no variables set): SQLite under var/, local-memory cache and
Celery tasks run in-process after commit. With DATABASE_URL and REDIS_URL set,
the same code runs on PostgreSQL, a Redis cache and a real Celery broker.
"""

import datetime
import logging
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
    "axes",  # issue 10: the login limiter
    "knox",  # issue 10: hashed API tokens (replaces rest_framework.authtoken; before crm, whose admin replaces knox's)
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
    # Issue 14: the Browser* ones do nothing for an API call that carries its token (crm.middleware.BrowserOnly).
    "crm.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "crm.middleware.BrowserAuthenticationMiddleware",
    "crm.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Issue 11: a page whose database is unreachable answers 503 JSON with Retry-After.
    "crm.middleware.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",  # issue 10: last, as axes asks
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
# acks_late, reject_on_worker_lost, prefetch and the visibility timeout: see the issue 11 block below.
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker that is down must not hang the request that enqueues: fail fast, the outbox sweep
# sends the message later. visibility_timeout: see the issue 11 block below.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "max_retries": 1,
    "visibility_timeout": 900,
}
CELERY_TASK_PUBLISH_RETRY = False
# Periodic tasks, run by one `celery -A crm beat` process.
CELERY_BEAT_SCHEDULE: dict = {
    # Overdue complaint follow-ups reach the next level within a minute of their deadline.
    "escalate-overdue-follow-ups": {"task": "crm.follow_ups_escalate", "schedule": 60.0},
    # Feedback stored while the broker was down gets its workflow soon after the broker returns
    # (every CRM_SWEEP_SECONDS: the issue 11 block below sets its schedule).
    "feedback-outbox-sweep": {"task": "crm.feedback_outbox_sweep"},
}
CELERY_TIMEZONE = "UTC"
# --- issue 11: nothing lost, nothing doubled ------------------------------------------------------
# acks_late: a task's message is acknowledged when it finishes, not when it starts, so a
# worker that dies mid-task leaves the message to another worker (tasks are idempotent).
CELERY_TASK_ACKS_LATE = True
# reject_on_worker_lost: a pool child killed mid-task (OOM, SIGKILL) gets its message
# requeued at once instead of acknowledged as failed.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# prefetch 1: a worker process reserves one message at a time, so a slow task (an e-mail
# to a slow server) never holds others hostage, and a dead worker strands at most one.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# visibility_timeout: Redis hands an unacknowledged message to another worker after this
# long. It must exceed the longest a worker legitimately holds one (retry countdowns up to
# 120 s, ETA tasks, a 300 s sweep), or healthy tasks run twice. We do not rely on it to
# recover fast: the outbox sweeps (below) re-send a lost workflow after
# CRM_OUTBOX_RESEND_SECONDS and an e-mail after its lease.
# Feedback whose workflow has not run this long after its message was sent was lost
# (Redis restarted without persistence, a worker killed with it reserved): send it again.
CRM_OUTBOX_RESEND_SECONDS = envint("CRM_OUTBOX_RESEND_SECONDS", 30)
# Runs of one workflow (each start counts, a killed worker too) before it is dead-lettered.
CRM_WORKFLOW_MAX_ATTEMPTS = envint("CRM_WORKFLOW_MAX_ATTEMPTS", 5)
# An e-mail is claimed for this long while it is sent; a dead worker's claim then expires.
# Keep it above EMAIL_TIMEOUT times the SMTP round trips, or a slow send may be repeated.
CRM_EMAIL_LEASE_SECONDS = envint("CRM_EMAIL_LEASE_SECONDS", 120)
# Failed sends before an e-mail is dead-lettered (back-off doubles from 5 s, capped at 1 h: ~11 h).
CRM_EMAIL_MAX_ATTEMPTS = envint("CRM_EMAIL_MAX_ATTEMPTS", 20)
# How often beat runs the two sweeps; together with the delays above this bounds recovery.
CRM_SWEEP_SECONDS = envint("CRM_SWEEP_SECONDS", 15)
# A sweep still queued when the next is due is stale (workers are behind): it expires instead of piling up.
CELERY_BEAT_SCHEDULE["feedback-outbox-sweep"].update(
    schedule=float(CRM_SWEEP_SECONDS), options={"expires": float(CRM_SWEEP_SECONDS)}
)
CELERY_BEAT_SCHEDULE["email-outbox-sweep"] = {
    "task": "crm.emails_send_pending",
    "schedule": float(CRM_SWEEP_SECONDS),
    "options": {"expires": float(CRM_SWEEP_SECONDS)},
}
# --- end issue 11 ---------------------------------------------------------------------------------

# --- Auth, API -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so an anonymous API call gets 401 with WWW-Authenticate.
        "crm.authentication.TokenAuthentication",  # knox's hashed tokens (issue 10)
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
    },
}
# --- Issue 10 part A: login limiter, API tokens, sessions -----------------------------
# Every login path (agent page, admin, token endpoint) authenticates through axes' backend:
# CRM_LOGIN_FAILURE_LIMIT failures for one username, or from one client address, refuse
# every login of it for CRM_LOGIN_COOLOFF_MINUTES (see crm/login_limits.py).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]


def envpositive(name: str, default: int) -> int:
    value = envint(name, default)
    if value < 1:
        # 0 would lock every login out at once, or make tokens and sessions die on issue.
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {value}")
    return value


AXES_FAILURE_LIMIT = envpositive("CRM_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=envpositive("CRM_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "crm.login_limits.client_address"  # CRM_NUM_PROXIES, like the throttles
AXES_LOCKOUT_CALLABLE = "crm.login_limits.lockout_response"
AXES_VERBOSE = False
# Tokens (crm/tokens.py): hashed; people's expire, integration accounts' do not.
REST_KNOX = {
    "TOKEN_TTL": datetime.timedelta(hours=envpositive("CRM_TOKEN_TTL_HOURS", 12)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
# A session lasts a working day on a shared desktop, then the login page again.
SESSION_COOKIE_AGE = envpositive("CRM_SESSION_HOURS", 10) * 3600
# A form login without `next` (the admin's) lands on the admin index, not Django's /accounts/profile/.
LOGIN_REDIRECT_URL = "admin:index"

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
    # Several fields are called "kind": name their enums after what they are.
    "ENUM_NAME_OVERRIDES": {
        "IdentityKindEnum": "crm.models.IdentityKind",
        "ImportKindEnum": "crm.models.ImportKind",
    },
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
# issue 11: an SMTP server that hangs must not outlive the send's lease (CRM_EMAIL_LEASE_SECONDS).
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 20)

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

# --- Issue 17: operations (logs, metrics, optional Sentry / OpenTelemetry) ---------------------
# One JSON object per line on stderr, web and worker alike, with the request id, user id and
# (in the worker) task name and id: crm/observability.py. Ids only, never personal data.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "crm.observability.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Celery's own loggers propagate to the root: JSON too.
        "celery": {"level": os.environ.get("LOG_LEVEL", "INFO")},
        "axes": {"level": "WARNING"},  # issue 10: not a line per failed login at INFO
    },
}

# --- issue 15: bulk import ---------------------------------------------------------------
# Uploaded files wait here for the worker (on the shared volume in a multi-host deployment).
CRM_IMPORT_DIR = Path(os.environ.get("CRM_IMPORT_DIR", VAR_DIR / "imports"))
# Rows per transaction: big enough that per-batch queries are amortized, small enough that a
# killed runner redoes little and a batch's rows stay a few MB in memory.
CRM_IMPORT_BATCH = envint("CRM_IMPORT_BATCH", 2000)
# A running import whose runner has not committed a batch for this long is taken over (killed worker).
CRM_IMPORT_STALE_SECONDS = envint("CRM_IMPORT_STALE_SECONDS", 120)
# Problems kept on the job for the API and the admin; the error file holds every rejected line.
CRM_IMPORT_MAX_REPORTED = envint("CRM_IMPORT_MAX_REPORTED", 1000)
# Database connections an import applies its batches on at once (PostgreSQL; SQLite has one writer).
# One backend's per-row index and foreign-key work caps a single connection; two put both cores of
# a 2-vCPU machine to work. Batches still commit in file order (crm/import_lanes.py).
CRM_IMPORT_CONNECTIONS = envint("CRM_IMPORT_CONNECTIONS", 2)
CELERY_BEAT_SCHEDULE["import-sweep"] = {"task": "crm.imports_sweep", "schedule": 60.0}
# Days an ended import's problems and error file are kept: they quote the rejected lines'
# personal data (an erased customer's too). The uploaded file goes as soon as the import ends.
CRM_IMPORT_KEEP_DAYS = envint("CRM_IMPORT_KEEP_DAYS", 7)
CELERY_BEAT_SCHEDULE["import-purge"] = {"task": "crm.imports_purge", "schedule": 3600.0}


# --- issue 14: a PostgreSQL read replica for reads that tolerate lag (crm/db_router.py) -------
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=600),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
        # Tests run against the primary's test database (no second server to create one on).
        "TEST": {"MIRROR": "default"},
    }
CRM_READ_REPLICA = bool(DATABASE_REPLICA_URL)
DATABASE_ROUTERS = ["crm.db_router.ReplicaRouter"]


# --- issue 10 (trust, part B): integrity and access ------------------------------------------
# Customer data is never kept by a browser or proxy cache; the agent page gets a strict CSP.
# Before AxesMiddleware, which asks to be last (its lockout answers get the headers too).
MIDDLEWARE.insert(MIDDLEWARE.index("axes.middleware.AxesMiddleware"), "crm.middleware.PrivacyHeadersMiddleware")
# Feedback naming a customer only by an identifier, linked to them per day at most (crm.feedback).
CRM_UNVERIFIED_FEEDBACK_PER_DAY = envint("CRM_UNVERIFIED_FEEDBACK_PER_DAY", 3)
# Open /agent/events streams per user (then 429), and per web process (then 503), so streams
# never take every server thread (see README, deployment).
CRM_MAX_STREAMS_PER_USER = envint("CRM_MAX_STREAMS_PER_USER", 3)
CRM_MAX_STREAMS_PER_PROCESS = envint("CRM_MAX_STREAMS_PER_PROCESS", 24)


# The broker queue tasks go to (one per deployment sharing a Redis; the ops tests use their own).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Python's warnings (a library's deprecation, Celery's "running as root") as JSON log lines too.
logging.captureWarnings(True)
# The worker logs through LOGGING above instead of installing Celery's plain-text handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
MIDDLEWARE = ["crm.middleware.RequestObservabilityMiddleware", *MIDDLEWARE]
# One JSON access line per request (route, status, duration, ids); false drops only that line.
CRM_ACCESS_LOG = envbool("CRM_ACCESS_LOG", True)
# GET /metrics: these addresses or networks (CIDR), or `Authorization: Bearer CRM_METRICS_TOKEN`.
CRM_METRICS_ALLOW = envlist("CRM_METRICS_ALLOW", "127.0.0.1,::1")
CRM_METRICS_TOKEN = os.environ.get("CRM_METRICS_TOKEN", "")
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]
# Rotating SECRET_KEY: the previous key(s) here keep sessions and signed links valid meanwhile.
SECRET_KEY_FALLBACKS = envlist("SECRET_KEY_FALLBACKS", "")
if os.environ.get("SENTRY_DSN"):
    from crm.observability import sentry_init

    sentry_init(os.environ["SENTRY_DSN"], environment=os.environ.get("SENTRY_ENVIRONMENT") or None)
if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
    from crm.observability import otel_init

    otel_init(os.environ.get("OTEL_SERVICE_NAME", "goldfish"))
# --- end issue 17 ---------------------------------------------------------------------------


# --- issue 13: the supervisor desk ---
# Survey fatigue: a customer who gave feedback is not asked again for this many days (0 = always ask).
CRM_SURVEY_SUPPRESSION_DAYS = envint("CRM_SURVEY_SUPPRESSION_DAYS", 30)
# Where customers reach the public pages (the survey link in after-contact messages).
CRM_PUBLIC_URL = os.environ.get("CRM_PUBLIC_URL", "http://localhost:8000")


# --- issue 16: telephony adapters and webhooks out ---------------------------------------------
# Twilio signs every webhook with the account's auth token (X-Twilio-Signature); empty = refuse all.
CRM_TWILIO_AUTH_TOKEN = os.environ.get("CRM_TWILIO_AUTH_TOKEN", "")
# The public URL Twilio posts to, when a proxy in front rewrites scheme/host (signatures cover the URL).
CRM_TWILIO_PUBLIC_URL = os.environ.get("CRM_TWILIO_PUBLIC_URL", "")
# Amazon Connect / Genesys Cloud: an integration token, or this secret in X-Goldfish-Key (empty = token only).
CRM_CONNECT_SHARED_SECRET = os.environ.get("CRM_CONNECT_SHARED_SECRET", "")
CRM_GENESYS_SHARED_SECRET = os.environ.get("CRM_GENESYS_SHARED_SECRET", "")
# Webhooks out: per-attempt timeout (s), backoff base/max (s), how long to retry (h), and whether
# private/loopback destinations are allowed (SSRF guard; tests and on-premises receivers only).
CRM_WEBHOOK_TIMEOUT = float(os.environ.get("CRM_WEBHOOK_TIMEOUT", "5"))
CRM_WEBHOOK_BACKOFF_BASE = float(os.environ.get("CRM_WEBHOOK_BACKOFF_BASE", "30"))
CRM_WEBHOOK_BACKOFF_MAX = float(os.environ.get("CRM_WEBHOOK_BACKOFF_MAX", "3600"))
CRM_WEBHOOK_RETRY_HOURS = float(os.environ.get("CRM_WEBHOOK_RETRY_HOURS", "24"))
CRM_WEBHOOK_ALLOW_PRIVATE = envbool("CRM_WEBHOOK_ALLOW_PRIVATE", False)
# Deliveries go to their own queue, so a slow receiver never holds up the workflow workers:
# run `celery -A crm worker -Q webhooks --pool threads --concurrency 16` (make webhook-worker).
# The webhooks queue's name (several deployments sharing one Redis each need their own).
CRM_WEBHOOK_QUEUE = os.environ.get("CRM_WEBHOOK_QUEUE", "webhooks")
CELERY_TASK_ROUTES = {"crm.webhook_deliver": {"queue": CRM_WEBHOOK_QUEUE}}
CELERY_BEAT_SCHEDULE["webhook-sweep"] = {"task": "crm.webhook_sweep", "schedule": 60.0}
# --- end issue 16
