"""What the workplace's views share: rendering inside the admin, lookups that 404 past the grants, durations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from cases.models import Case, Queue
from governance.admin_mixins import acting_user
from governance.exceptions import Conflict
from reviews.selectors import workable_cases, workable_queues

# What a service may answer instead of doing the work; the admin shows it as a message and nothing changed.
REFUSALS = (Conflict, PermissionDenied, ValidationError)


def render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """A page inside the admin: its header, sidebar and messages, with `context` on top."""
    request.current_app = admin.site.name
    return TemplateResponse(request, template, {**admin.site.each_context(request), **context}, status=status)


def refusal_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Not allowed."


def refuse(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, refusal_text(exc))


def rows_of(data: Any) -> list[tuple[str, str, bool]]:
    """(key, value, is_text) rows of a JSON object: text as it is, anything else as indented JSON."""
    if not isinstance(data, dict):
        return [("", json.dumps(data, indent=2, ensure_ascii=False, default=str), False)]
    return [
        (str(key), value, True)
        if isinstance(value, str)
        else (str(key), json.dumps(value, indent=2, ensure_ascii=False, default=str), False)
        for key, value in data.items()
    ]


def form_errors(form: forms.Form) -> str:
    errors = "; ".join(f"{name}: {' '.join(str(e) for e in errs)}" for name, errs in form.errors.items())
    return f"{errors} Nothing changed."


def workable_queue_or_404(request: HttpRequest, slug: str) -> Queue:
    """A queue the user works; any other, or none, is a 404 (never a 403 that says it exists)."""
    queue: Queue = get_object_or_404(workable_queues(acting_user(request)).select_related("category"), slug=slug)
    return queue


def workable_case_or_404(request: HttpRequest, pk: int) -> Case:
    """A case the user may see in a queue they work, with what the review page reads of it."""
    cases = workable_cases(acting_user(request)).select_related(
        "category", "queue__category", "model_version", "claimed_by"
    )
    case = cases.filter(pk=pk).first()
    if case is None:
        raise Http404("No case matches the given query.")
    return case


def duration_text(delta: timedelta) -> str:
    """A short human duration: 45s, 12m, 3h 05m, 2d 4h."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def sla_text(sla: timedelta) -> str:
    """A queue's SLA as people say it: 24 h, 4 h, 90 min."""
    seconds = int(sla.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return duration_text(sla)


@dataclass(frozen=True)
class Countdown:
    """Time left before a deadline (an SLA, a claim), or how long ago it passed."""

    text: str
    overdue: bool

    @classmethod
    def until(cls, deadline: datetime | None, now: datetime) -> Countdown | None:
        if deadline is None:
            return None
        delta = deadline - now
        if delta.total_seconds() < 0:
            return cls(f"overdue {duration_text(delta)}", overdue=True)
        return cls(f"in {duration_text(delta)}", overdue=False)


def claim_holder(case: Case, now: datetime) -> str:
    """Who holds the case now (an expired claim holds nothing), or an empty string."""
    if case.holder_id_at(now) is None or case.claimed_by is None:
        return ""
    return case.claimed_by.get_username()
