"""WSGI entry point of the floor: ``gunicorn floor.wsgi --chdir bench/floor`` (bench/intake.py starts it)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "floor.settings")
application = get_wsgi_application()
