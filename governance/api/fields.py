"""Serializer fields and the request parser shared by every app's API: JSON the database can store, and no more
nesting than every reader can walk (`governance.jsonvalues` holds the rule)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from django.db import models
from django.db.models import Model, Prefetch
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from governance import jsonvalues


class DepthLimitedJSONParser(JSONParser):
    """The API's only parser: JSON, refused before parsing when it nests deeper than the limit (a body nested
    10,000 deep would otherwise exhaust the parser's recursion)."""

    def parse(self, stream: IO[Any] | None, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if jsonvalues.exceeds_depth(raw):
            raise ParseError(
                f"JSON parse error - the body nests arrays and objects deeper than {jsonvalues.max_depth()} "
                "levels; flatten it."
            )
        if not raw.strip():
            raise ParseError("JSON parse error - the body is empty; send a JSON object.")
        # The body, read once for the depth check, goes to DRF's parser as a stream again.
        return super().parse(io.BytesIO(raw), media_type, parser_context)


class StorableJSONField(serializers.JSONField):
    """Any JSON value the database can store and read back: no NUL, no lone surrogate, bounded nesting."""

    def to_internal_value(self, data: Any) -> Any:
        problem = jsonvalues.storage_problem(data)
        if problem:
            raise serializers.ValidationError(f"Cannot be stored: {problem}.")
        return super().to_internal_value(data)


class JSONObjectField(StorableJSONField):
    """A JSON object (a dict), nothing else."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(f"Must be a JSON object, not {type(data).__name__}.")
        result: dict[str, Any] = super().to_internal_value(data)
        return result


class StorableSlugRelatedField(serializers.SlugRelatedField[Any]):
    """A writable lookup by slug that refuses, as a 400 naming the field, text no database can look up (a NUL, a
    lone surrogate), before the query that PostgreSQL would answer with an error."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            problem = jsonvalues.text_problem(data)
            if problem is not None:
                raise serializers.ValidationError(f"The value {problem}.")
        return super().to_internal_value(data)


class StorableModelSerializer(serializers.ModelSerializer[Any]):
    """A ModelSerializer whose model JSON fields are StorableJSONFields."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping}
    serializer_field_mapping[models.JSONField] = StorableJSONField


@dataclass(frozen=True)
class ExtraField:
    """A read-only field a higher layer adds to a lower layer's representation (cases adds a category's `queues`,
    reviews a case's `decisions`): the lower layer never names what sits above it, yet the object reads whole.

    `make` builds a fresh serializer field for each serializer; `prefetch` is what a list of these objects
    prefetches so the field costs no query per object (a lookup, or a `Prefetch` with its queryset).
    """

    name: str
    make: Callable[[], serializers.Field[Any, Any, Any, Any]]
    prefetch: Callable[[], str | Prefetch[Any]]


class ExtraFields:
    """The fields registered onto one serializer, in registration order (the layers' order: lower apps' `ready()`
    run first). Registering a name again replaces it, so a reload is harmless."""

    def __init__(self) -> None:
        self._fields: dict[str, ExtraField] = {}

    def register(self, field: ExtraField) -> None:
        self._fields[field.name] = field

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def made(self) -> list[tuple[str, serializers.Field[Any, Any, Any, Any]]]:
        """A fresh field for each registration, for a serializer's `get_fields()`."""
        return [(field.name, field.make()) for field in self._fields.values()]

    def prefetches(self) -> list[str | Prefetch[Any]]:
        """What a queryset of these objects prefetches so that every registered field is read once per page."""
        return [field.prefetch() for field in self._fields.values()]

    def mark_empty(self, obj: Model) -> None:
        """An object created a moment ago has nothing related yet: its fields answer without asking the database."""
        cache: dict[str, Any] = obj.__dict__.setdefault("_prefetched_objects_cache", {})
        for field in self._fields.values():
            prefetch = field.prefetch()
            if isinstance(prefetch, Prefetch) and prefetch.queryset is not None:
                empty = prefetch.queryset.none()
                # Already evaluated, as Django's own prefetching leaves it: reading it compiles no SQL (an
                # unevaluated none() still builds its query each time, about a millisecond per case in a bulk).
                empty._result_cache = []
                empty._prefetch_done = True  # type: ignore[attr-defined]  # a QuerySet attribute the stubs omit
                cache[prefetch.prefetch_to] = empty
