"""The hash recorded with a built-in model's artifact: one function, so what registration writes and what the
predictor checks cannot drift apart. Kept apart from governance.predictor, which imports scikit-learn (seconds),
so registering a version or importing the services never pays for it."""

from __future__ import annotations

import hashlib


def artifact_digest(data: bytes) -> str:
    """The SHA-256 recorded with an artifact, as lowercase hex."""
    return hashlib.sha256(data).hexdigest()
