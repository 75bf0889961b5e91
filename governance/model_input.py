"""What a built-in model reads of a case: its input's redacted text (DESIGN.md, Feedback loop).

Training (metrics) and prediction at intake (cases) must turn an input into text the same way, so this is the one
function, in the lowest layer both may import. A module of its own, without scikit-learn or skops (seconds to
import), so intake can call it in processes that have not loaded a model yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from governance.pii import redact


def input_text(value: Any, *, pii_fields: Iterable[str] | None) -> str:
    """A case input as the model reads it: its redacted view's text values, in order, one per line. Redacted,
    because a model trained on personal data would learn it, and the label export shows the same view."""
    return "\n".join(_strings(redact(value, pii_fields=pii_fields)))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
