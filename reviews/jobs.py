"""Background jobs of the reviews layer: thin functions over its services, idempotent."""

from __future__ import annotations

from typing import Any

from reviews.services.exports import run_export


def export_labels(export_id: int) -> dict[str, Any]:
    """A label export started from the admin: write its file, counting progress."""
    return run_export(export_id)
