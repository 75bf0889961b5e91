"""Form fields for the admin's list and mapping settings, written one entry per line instead of as JSON.

A person types one label (or rule, or field name) per line, or `stratum = multiplier` lines; an entry that cannot be
right is refused by its line number and text, so the error says what to fix. The model's own validation still runs
afterwards (Policy.clean), and the API keeps taking JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

# One entry: starts with a letter or digit, then letters, digits, spaces and . _ - : / (labels such as
# "wrong address", rules such as "chargeback-risk", field names such as "customer.email").
ENTRY = re.compile(r"^[^\W_][\w .:/-]*$")
ENTRY_MAX_LENGTH = 100


def _lines(value: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the lines that hold something."""
    return [(number, line.strip()) for number, line in enumerate(value.splitlines(), start=1) if line.strip()]


class LinesField(forms.Field):
    """A list of short strings, one per line; blank lines are ignored, duplicates and odd characters refused."""

    def __init__(self, *, entry_name: str = "entry", **kwargs: Any) -> None:
        self.entry_name = entry_name
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 4, "cols": 40, "class": "hitl-lines"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if value in (None, ""):
            return []
        if isinstance(value, list | tuple):  # initial data, already a list
            return [str(item) for item in value]
        entries: list[str] = []
        errors: list[str] = []
        for number, text in _lines(str(value)):
            problem = self._problem(text, entries)
            if problem:
                errors.append(f"Line {number}, {text!r}: {problem}")
            else:
                entries.append(text)
        if errors:
            raise ValidationError(errors)
        return entries

    def _problem(self, text: str, seen: Iterable[str]) -> str:
        if text.startswith(("[", "{", '"')):
            return f"write one {self.entry_name} per line, without JSON brackets or quotes."
        if len(text) > ENTRY_MAX_LENGTH:
            return f"a {self.entry_name} has at most {ENTRY_MAX_LENGTH} characters."
        if not ENTRY.match(text):
            return f"a {self.entry_name} holds letters, digits, spaces and . _ - : / only (one per line)."
        if text in seen:
            return f"this {self.entry_name} is already listed."
        return ""


class MultipliersField(forms.Field):
    """A mapping of known keys to numbers >= 0, one `key = number` line each; keys left out are not in the mapping."""

    def __init__(self, *, known: Iterable[str], **kwargs: Any) -> None:
        self.known = list(known)
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": len(self.known) or 3, "cols": 40}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            # In the known keys' order, whatever order the database gives them back in (PostgreSQL's jsonb sorts).
            order = {key: index for index, key in enumerate(self.known)}
            keys = sorted(value, key=lambda key: (order.get(key, len(order)), key))
            return "\n".join(f"{key} = {value[key]:g}" for key in keys)
        return value

    def to_python(self, value: Any) -> dict[str, float]:
        if value in (None, ""):
            return {}
        if isinstance(value, dict):
            return {str(key): float(factor) for key, factor in value.items()}
        found: dict[str, float] = {}
        errors: list[str] = []
        for number, text in _lines(str(value)):
            parts = [part.strip() for part in re.split(r"(=|:)", text, maxsplit=1)]
            if len(parts) != 3:
                errors.append(f"Line {number}, {text!r}: write it as 'stratum = multiplier', e.g. 'canary = 3'.")
                continue
            key, _, number_text = parts
            if key not in self.known:
                errors.append(f"Line {number}, {text!r}: {key!r} is not a stratum; the strata are {self.known}.")
                continue
            if key in found:
                errors.append(f"Line {number}, {text!r}: {key!r} is already given.")
                continue
            try:
                factor = float(number_text)
            except ValueError:
                errors.append(f"Line {number}, {text!r}: {number_text!r} is not a number.")
                continue
            if not factor >= 0 or factor == float("inf"):
                errors.append(f"Line {number}, {text!r}: the multiplier must be a number >= 0.")
                continue
            found[key] = factor
        if errors:
            raise ValidationError(errors)
        return found
