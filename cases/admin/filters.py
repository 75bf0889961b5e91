"""The case list's own filters: by queue and model version (offering only what the user may see), waiting for a
person, confidence and segment, each a fixed number of queries whatever the number of cases."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.http import HttpRequest

from cases.choices import OPEN_STATUSES, AuditStatus
from cases.models import Queue
from cases.selectors import confidence_bucket
from governance.admin_mixins import offered_value
from governance.models import ModelVersion

if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList


class VisibleQueueFilter(admin.SimpleListFilter):
    """Filter by queue, offering only the queues the user may see."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        queues = Queue.objects.visible_to(request.user).order_by("slug").only("pk", "slug")
        return [(str(queue.pk), queue.slug) for queue in queues]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = offered_value(self)
        return queryset.filter(queue_id=value) if value else queryset


class ModelVersionFilter(admin.SimpleListFilter):
    """Filter by model version, offering only the versions of the categories the user may see."""

    title = "model version"
    parameter_name = "model_version"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        versions = ModelVersion.objects.visible_to(request.user).select_related("category")
        ordered = sorted(versions, key=lambda v: (v.category.slug, v.name, v.version))
        return [(str(v.pk), f"{v.label} ({v.category.slug})") for v in ordered]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = offered_value(self)
        return queryset.filter(model_version_id=value) if value else queryset


class WaitingFilter(admin.SimpleListFilter):
    """Cases waiting for a person now: open ones, and auto-approved ones drawn for audit not audited yet (what a
    queue's depth counts, `Case.objects.waiting`)."""

    title = "waiting for a person"
    parameter_name = "waiting"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Waiting"), ("no", "Not waiting")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        waiting = Q(status__in=OPEN_STATUSES) | Q(audit_status=AuditStatus.PENDING)
        value = offered_value(self)
        if value == "yes":
            return queryset.filter(waiting)
        return queryset.exclude(waiting) if value == "no" else queryset


# Tenths of [0, 1] (the confidence histogram's bars) and "at least" in hundredths (the threshold advisor's rows).
_TENTHS = [(f"{b / 10:.1f}-{(b + 1) / 10:.1f}", b) for b in range(10)]
_AT_LEAST = [(f"{h / 100:.2f}-", h) for h in range(1, 100)]


class ConfidenceFilter(admin.SimpleListFilter):
    """Filter by confidence: a tenth of [0, 1] (`0.3-0.4`) or at least a value in hundredths (`0.87-`), cut by the
    same bucketing as the KPIs (`cases.selectors.confidence_bucket`), so the list holds a bar's cases exactly."""

    title = "confidence"
    parameter_name = "confidence"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenths = [(key, key.replace("-", " to ")) for key, _ in _TENTHS]
        return [*tenths, *((key, f"{key[:-1]} or more") for key, _ in _AT_LEAST)]

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        # The sidebar offers the tenths; an "at least" value (from a dashboard link) shows only while chosen.
        for choice in super().choices(changelist):
            if choice["selected"] or "or more" not in str(choice["display"]):
                yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = offered_value(self)
        if not value:
            return queryset
        narrowed: QuerySet[Any]
        if value in dict(_TENTHS):
            narrowed = queryset.alias(_tenth=confidence_bucket(10)).filter(_tenth=dict(_TENTHS)[value])
        else:
            narrowed = queryset.alias(_hundredth=confidence_bucket(100)).filter(_hundredth__gte=dict(_AT_LEAST)[value])
        return narrowed


_SEGMENT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SegmentFilter(admin.SimpleListFilter):
    """One value of one segment key, `?segment=channel:email` (the fairness rows link here). The key is checked
    against a plain name pattern and always read as a JSON key, never as a lookup; the value is a bound parameter.
    Not offered in the sidebar (listing every segment would scan the cases), shown while in use."""

    title = "segment"
    parameter_name = "segment"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def has_output(self) -> bool:
        return self.value() is not None

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        key, sep, wanted = value.partition(":")
        if not sep or not _SEGMENT_KEY.fullmatch(key) or "__" in key or len(wanted) > 200:
            raise IncorrectLookupParameters("segment must be key:value, e.g. channel:email.")
        matches = Q(_segment_value=wanted)
        try:
            decoded = json.loads(wanted)  # a number or true/false is shown as its JSON text
        except ValueError:
            decoded = None
        if decoded is not None and not isinstance(decoded, str):
            matches |= Q(_segment_value=decoded)
        narrowed: QuerySet[Any] = queryset.alias(_segment_value=KeyTransform(key, "segment")).filter(matches)
        return narrowed
