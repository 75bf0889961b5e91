"""Errors that services raise and every caller (admin, API, jobs) turns into its own way of saying no."""

from __future__ import annotations


class Conflict(Exception):
    """The request is valid but clashes with the current state (HTTP 409): e.g. a case already decided."""
