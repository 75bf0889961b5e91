"""Settings of the intake floor: a plain DRF app beside the project, for bench/intake.py only.

It matches the project where a fixed cost per request would otherwise differ (hitl_project/settings.py): DEBUG
off, DATABASE_URL with the same persistent connections (CONN_MAX_AGE 60, health checks), DRF token authentication
against the same `rest_framework.authtoken` table with IsAuthenticated, the same anon and user throttles on a
local-memory cache, JSON bodies only, and the same request body limit. It leaves out what is the project's own
work: no admin, no sessions, messages, CSRF, history or lockout middleware, no object permissions.
"""

from __future__ import annotations

import environ

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="floor-bench-only-not-a-secret")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "floor",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "floor.urls"
WSGI_APPLICATION = "floor.wsgi.application"

DATABASES = {"default": env.db_url("DATABASE_URL")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = True

# The project's bulk limit (HITL_MAX_BULK_BODY_BYTES): a bulk body of 500 cases is read the same way.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("HITL_MAX_BULK_BODY_BYTES", default=8 * 1024 * 1024)

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("HITL_THROTTLE_ANON", default="60/minute"),
        "user": env.str("HITL_THROTTLE_USER", default="6000/minute"),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
