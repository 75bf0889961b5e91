#!/usr/bin/env python
"""The floor's manage.py (run from bench/floor, DATABASE_URL set): makemigrations, migrate, floor_setup."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "floor.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
