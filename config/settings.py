"""Settings, read from the environment in one place.

Every variable has a default that works for `make run` on a fresh machine
(the embedded PostgreSQL that `make run` starts from `var/postgres`, a
filesystem Celery broker). Production sets the variables; the code paths are
the same, PostgreSQL's. See `.env.example`.
"""

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")


def _read(reader, name, **kwargs):
    """Read one variable with a typed reader; a malformed value names the variable."""
    try:
        return reader(name, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Environment variable {name} is malformed: {exc}") from exc


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _bool(name: str, *, default: bool) -> bool:
    """A strict boolean: django-environ would read any typo as False."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"Environment variable {name} is malformed: {raw!r} is not true/false.")
    return raw in _TRUE


# Development defaults: a fixed key that must never be used in production
# (the `outreach.W001` check says so when DEBUG is off).
DEV_SECRET_KEY = "dev-insecure-0c5b0f1d6a8e4f7b9c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"  # noqa: S105 (development only; outreach.W001)
DEV_FIELD_ENCRYPTION_KEY = "F5IXkJvLJvTBuSyiwU_3SieQmG8GUP1KYHdRf2l0e9w="

# Local state of `make run`: the filesystem broker, the cache, demo credentials.
VAR_DIR = Path(_read(env.str, "VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = _bool("DEBUG", default=True)
SECRET_KEY = _read(env.str, "SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = _read(env.list, "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = _read(env.list, "CSRF_TRUSTED_ORIGINS", default=[])

# Comma-separated Fernet keys: the first encrypts, all decrypt (key rotation).
FIELD_ENCRYPTION_KEYS = _read(env.list, "FIELD_ENCRYPTION_KEYS", default=[DEV_FIELD_ENCRYPTION_KEY])
# Base of the links put into emails (tracking pixel, unsubscribe).
PUBLIC_BASE_URL = _read(env.str, "PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Inbound events (the inbound app): tracking token lifetimes, the prefetch window in which a known
# image proxy's pixel load is not an open, an optional mailto for List-Unsubscribe, reply-detection
# polling (interval, timeout, backoff after a failure, extra CA bundle for IMAP TLS).
TRACKING_TOKEN_MAX_AGE_DAYS = _read(env.int, "TRACKING_TOKEN_MAX_AGE_DAYS", default=365)
UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS = _read(env.int, "UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS", default=1095)
OPEN_PREFETCH_WINDOW_SECONDS = _read(env.int, "OPEN_PREFETCH_WINDOW_SECONDS", default=60)
UNSUBSCRIBE_MAILTO = _read(env.str, "UNSUBSCRIBE_MAILTO", default="")
IMAP_POLL_SECONDS = _read(env.float, "IMAP_POLL_SECONDS", default=180.0)
IMAP_TIMEOUT_SECONDS = _read(env.float, "IMAP_TIMEOUT_SECONDS", default=30.0)
IMAP_BACKOFF_BASE_SECONDS = _read(env.int, "IMAP_BACKOFF_BASE_SECONDS", default=60)
IMAP_BACKOFF_MAX_SECONDS = _read(env.int, "IMAP_BACKOFF_MAX_SECONDS", default=6 * 3600)
IMAP_CA_BUNDLE = _read(env.str, "IMAP_CA_BUNDLE", default="")
# A stored provider (SMTP2GO) event still unapplied this long after it arrived lost its task (the broker
# restarted between commit and delivery): the minutely sweeper applies it. Younger ones are on their way.
PROVIDER_EVENT_GRACE_SECONDS = _read(env.int, "PROVIDER_EVENT_GRACE_SECONDS", default=30)
# Comma-separated host[:port]; empty means the system resolver.
DNS_NAMESERVERS = _read(env.list, "DNS_NAMESERVERS", default=[])
# Development and tests only: lets webhook URLs point at private addresses.
WEBHOOKS_ALLOW_PRIVATE_URLS = _bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=False)
# Outbound webhooks: the total time one delivery attempt may take (connect to last byte).
WEBHOOKS_DELIVERY_TIMEOUT_SECONDS = _read(env.float, "WEBHOOKS_DELIVERY_TIMEOUT_SECONDS", default=15.0)
# A PEM file of CAs that verify webhook receivers instead of the system store (private CAs); empty: system CAs.
WEBHOOKS_CA_BUNDLE = _read(env.str, "WEBHOOKS_CA_BUNDLE", default="")
# How often beat starts a delivery tick, and how long one tick may keep delivering a backlog.
WEBHOOKS_TICK_SECONDS = _read(env.float, "WEBHOOKS_TICK_SECONDS", default=2.0)
WEBHOOKS_TICK_BUDGET_SECONDS = _read(env.float, "WEBHOOKS_TICK_BUDGET_SECONDS", default=30.0)
# Events (and their finished deliveries) are kept this many days.
WEBHOOKS_EVENT_RETENTION_DAYS = _read(env.int, "WEBHOOKS_EVENT_RETENTION_DAYS", default=30)
# Sending engine (mailing): the domain of our Message-IDs (default: PUBLIC_BASE_URL's host), how often
# beat claims due sends, how many per task, how long a claim (and a started send) may take before it is
# reclaimed (queued: sent again; sending: marked unknown), SMTP socket timeout, and retries with backoff.
MAILING_MESSAGE_ID_DOMAIN = _read(
    env.str, "MAILING_MESSAGE_ID_DOMAIN", default=(urlsplit(PUBLIC_BASE_URL).hostname or "localhost")
)
MAILING_TICK_SECONDS = _read(env.float, "MAILING_TICK_SECONDS", default=5.0)
MAILING_CHUNK_SIZE = _read(env.int, "MAILING_CHUNK_SIZE", default=100)
MAILING_TICK_MAX_CHUNKS = _read(env.int, "MAILING_TICK_MAX_CHUNKS", default=50)
MAILING_LEASE_SECONDS = _read(env.float, "MAILING_LEASE_SECONDS", default=600.0)
MAILING_SENDING_LEASE_SECONDS = _read(env.float, "MAILING_SENDING_LEASE_SECONDS", default=300.0)
MAILING_SMTP_TIMEOUT_SECONDS = _read(env.float, "MAILING_SMTP_TIMEOUT_SECONDS", default=30.0)
# SMTP and IMAP hosts are tenant input: private, loopback and link-local addresses are refused
# (no SSRF through a credential) unless this is on; on by default only with DEBUG (`make run`'s sink).
MAILING_ALLOW_PRIVATE_HOSTS = _bool("MAILING_ALLOW_PRIVATE_HOSTS", default=DEBUG)
MAILING_MAX_ATTEMPTS = _read(env.int, "MAILING_MAX_ATTEMPTS", default=5)
MAILING_RETRY_BASE_SECONDS = _read(env.float, "MAILING_RETRY_BASE_SECONDS", default=60.0)
# Sent messages whose consequences (enrollment transitions, events, counters) a worker applies in one
# transaction. Each message's `sent` is committed at once whatever this is; a batch a crash leaves
# unapplied is applied by the lease reaper.
MAILING_OUTCOME_BATCH = _read(env.int, "MAILING_OUTCOME_BATCH", default=50)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "core",
    "accounts",
    "contacts",
    "mailboxes",
    "campaigns",
    "enrollments",
    "mailing",
    "inbound",
    "journeys",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.ApiBodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# The default is the embedded server `make run` starts (scripts/local_postgres.py, same port).
DATABASES = {
    "default": _read(env.db_url, "DATABASE_URL", default="postgres://postgres@127.0.0.1:54329/outreach"),
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    # One code path: the set-based SQL (dispatch, claims, tallies) is PostgreSQL's and has no twin.
    raise ImproperlyConfigured("Environment variable DATABASE_URL must point at PostgreSQL (postgres://…).")
DATABASES["default"].setdefault("CONN_MAX_AGE", _read(env.int, "CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django binds parameters client-side and never prepares; on, this lets the sender's per-message
# statement (mailing.sending) be prepared once per connection instead of planned per message. Off by
# default, as in Django: a PgBouncer in transaction mode older than 1.21 loses prepared statements.
DATABASE_PREPARED_STATEMENTS = _bool("DATABASE_PREPARED_STATEMENTS", default=False)
if DATABASE_PREPARED_STATEMENTS:
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis when REDIS_URL is set; otherwise a broker and cache that need no server.
REDIS_URL = _read(env.str, "REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}  # kombu's Redis defaults; defined in both branches, read once
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CELERY_BROKER_URL = "filesystem://"
    for _folder in ("broker", "broker-processed", "broker-control", "cache"):  # kombu does not create them
        (VAR_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "broker"),
        "data_folder_out": str(VAR_DIR / "broker"),
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "control_folder": str(VAR_DIR / "broker-control"),
        "store_processed": False,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Every periodic job of the product; each app's task module names what it runs.
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE["inbound-poll-imap"] = {
    "task": "inbound.poll_imap_mailboxes",
    "schedule": IMAP_POLL_SECONDS,
    "options": {"expires": IMAP_POLL_SECONDS},
}
CELERY_BEAT_SCHEDULE["inbound-apply-open-hits"] = {
    "task": "inbound.apply_open_hits",
    "schedule": 2.0,
    "options": {"expires": 10.0},
}
CELERY_BEAT_SCHEDULE["inbound-apply-pending-provider-events"] = {
    "task": "inbound.apply_pending_provider_events",
    "schedule": 60.0,
    "options": {"expires": 60.0},
}
CELERY_BEAT_SCHEDULE["webhooks-deliver"] = {
    "task": "webhooks.deliver_webhooks",
    "schedule": WEBHOOKS_TICK_SECONDS,
    "options": {"expires": WEBHOOKS_TICK_SECONDS * 5},  # a tick that waited that long is redundant
}
CELERY_BEAT_SCHEDULE["webhooks-purge-events"] = {"task": "webhooks.purge_webhook_events", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["journeys-dispatch"] = {
    "task": "journeys.dispatch_journeys",
    "schedule": 30.0,
    "options": {"expires": 30.0},
}
CELERY_BEAT_SCHEDULE["mailing-claim-due-sends"] = {
    "task": "mailing.claim_due_sends",
    "schedule": MAILING_TICK_SECONDS,
    "options": {"expires": MAILING_TICK_SECONDS * 3},  # a late tick is redundant: the next one claims the same rows
}

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
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Request size limits (DESIGN.md): JSON bodies 10 MB, CSV uploads 50 MB.
API_MAX_JSON_BODY_BYTES = 10 * 1024 * 1024
API_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_JSON_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.NulRefusingJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.KeysetPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_METADATA_CLASS": "core.metadata.ApiMetadata",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Outreach API",
    "DESCRIPTION": (
        "Multi-step email outreach: contacts, campaigns, enrollments and webhooks.\n\n"
        "Authenticate with `Authorization: Bearer <key>` or `x-api-key: <key>`. "
        'Errors answer `{"error": {"code", "message", "details"}}`. '
        'Lists are bare JSON arrays paginated by `limit` and a `Link: <…>; rel="next"` header.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api",
    # Several models have a `status` field with different choices: name each enum.
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "EnrollmentStatusEnum": "enrollments.models.Enrollment.Status",
    },
}

# Production hardening: values derived from DEBUG, so `check --deploy` is clean
# when DEBUG is off. Behind the PaaS router TLS ends at the proxy.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = _read(env.int, "SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
X_FRAME_OPTIONS = "DENY"

# Celery's routine lines (beat's "Sending due task", the worker's "Task … received" and "… succeeded")
# come every few seconds for the send tick and buried what a person wants to see: the product's own
# events at INFO (a message sent, a reply detected, a campaign completed). They are at WARNING unless
# CELERY_ROUTINE_LOG_LEVEL says otherwise; Celery's warnings and errors still show.
CELERY_ROUTINE_LOGGERS = ("celery.beat", "celery.app.trace", "celery.worker.strategy")
CELERY_ROUTINE_LOG_LEVEL = _read(env.str, "CELERY_ROUTINE_LOG_LEVEL", default="WARNING").upper()
if CELERY_ROUTINE_LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured("CELERY_ROUTINE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": _read(env.str, "LOG_LEVEL", default="INFO")},
    "loggers": {name: {"level": CELERY_ROUTINE_LOG_LEVEL} for name in CELERY_ROUTINE_LOGGERS},
}

# --- OAuth2 mailboxes (mailboxes/oauth.py) ---
# Google and Microsoft mailboxes connect through the authorization-code flow with PKCE. The client ids
# and secrets come from each provider's console; a provider without a client id cannot be connected.
# Tests point the endpoints at a local authorization server.
MICROSOFT_OAUTH_TENANT = _read(env.str, "MICROSOFT_OAUTH_TENANT", default="common")
if not MICROSOFT_OAUTH_TENANT or not all(c.isalnum() or c in ".-" for c in MICROSOFT_OAUTH_TENANT):
    raise ImproperlyConfigured("Environment variable MICROSOFT_OAUTH_TENANT is malformed: a tenant id or domain.")
OAUTH_PROVIDERS = {
    "google": {
        "label": "Google",
        "client_id": _read(env.str, "GOOGLE_OAUTH_CLIENT_ID", default=""),
        "client_secret": _read(env.str, "GOOGLE_OAUTH_CLIENT_SECRET", default=""),
        "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        # openid email: the ID token says which account consented, checked against the mailbox's address.
        "scopes": ["openid", "email", "https://mail.google.com/"],
        # Google issues a refresh token only for offline access, and on a reconnect only with consent.
        "authorize_params": {"access_type": "offline", "prompt": "consent"},
        "smtp_host": "smtp.gmail.com",
        "smtp_port": 587,
        "imap_host": "imap.gmail.com",
        "imap_port": 993,
    },
    "microsoft": {
        "label": "Microsoft",
        "client_id": _read(env.str, "MICROSOFT_OAUTH_CLIENT_ID", default=""),
        "client_secret": _read(env.str, "MICROSOFT_OAUTH_CLIENT_SECRET", default=""),
        "authorization_url": f"https://login.microsoftonline.com/{MICROSOFT_OAUTH_TENANT}/oauth2/v2.0/authorize",
        "token_url": f"https://login.microsoftonline.com/{MICROSOFT_OAUTH_TENANT}/oauth2/v2.0/token",
        # offline_access is what makes Microsoft issue a refresh token.
        "scopes": [
            "openid",
            "email",
            "offline_access",
            "https://outlook.office.com/SMTP.Send",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
        ],
        "authorize_params": {},
        "smtp_host": "smtp.office365.com",
        "smtp_port": 587,
        "imap_host": "outlook.office365.com",
        "imap_port": 993,
    },
}
# Refresh an access token when it expires within this many seconds (a send or poll must not outlive it).
OAUTH_REFRESH_MARGIN_SECONDS = _read(env.int, "OAUTH_REFRESH_MARGIN_SECONDS", default=300)
OAUTH_HTTP_TIMEOUT_SECONDS = _read(env.float, "OAUTH_HTTP_TIMEOUT_SECONDS", default=10.0)
# --- end OAuth2 ---
