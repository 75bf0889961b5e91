"""The workplace's forms: what a reviewer posts, parsed; the rules themselves stay in `reviews.services`.

Fields that a service checks (a reason code required to reject, a label required to correct) are optional here
on purpose: the service says no with its own message, so the admin and the API refuse with the same words.
"""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.core import signing

from cases.choices import QueueKind
from cases.models import Case, Queue
from reviews.choices import ReasonCode

# The stamp of when a page was opened, signed so that the seconds a decision records cannot be made up.
OPENED_SALT = "reviews.workplace.opened"
# A page open longer than this measured a lunch break, not a review: the time is not recorded.
MAX_SECONDS = 4 * 3600


def opened_stamp(scope: str) -> str:
    """A signed stamp of now, bound to what the page shows (a case, or a queue's list for a batch)."""
    return signing.dumps({"scope": scope, "at": time.time()}, salt=OPENED_SALT)


def seconds_since(stamp: str, scope: str) -> int | None:
    """Whole seconds since the page with this stamp was opened; None when the stamp is missing or not ours."""
    try:
        data = signing.loads(stamp, salt=OPENED_SALT, max_age=MAX_SECONDS)
    except signing.BadSignature:  # SignatureExpired too
        return None
    if not isinstance(data, dict) or data.get("scope") != scope:
        return None
    return max(0, round(time.time() - float(data.get("at", 0))))


def reason_choices() -> list[tuple[str, str]]:
    """Reason codes numbered 1-6, the digit keys that pick them on the review page."""
    return [("", "— reason —")] + [
        (value, f"{number} · {label}") for number, (value, label) in enumerate(ReasonCode.choices, start=1)
    ]


class DecideForm(forms.Form):
    """One decision on a case: approve, correct, reject, escalate; confirm or flag for an audit."""

    label = forms.CharField(required=False, max_length=200)
    text = forms.CharField(required=False, max_length=20000)
    reason_code = forms.ChoiceField(choices=reason_choices, required=False)
    notes = forms.CharField(required=False, max_length=5000)
    opened = forms.CharField(required=False)
    # A label the category has never seen is taken only with this ticked: a typo must not become a new label.
    new_label = forms.BooleanField(required=False)

    def unknown_label(self, known: list[str]) -> str | None:
        """The posted label when it is none of `known` and the reviewer did not confirm it as new, else None."""
        label = str(self.cleaned_data["label"]).strip()
        if not label or label in known or self.cleaned_data["new_label"]:
            return None
        return label

    def output(self, case: Case, *, blind: bool) -> dict[str, Any] | None:
        """The reviewer's output: the model's with their label and draft, or in blind review only their own.

        The model's reasoning and score describe its answer, not the corrected one, so they are not carried over.
        """
        label = self.cleaned_data["label"].strip()
        if not label:
            return None  # the service refuses a correct or a flag without a label, in its own words
        base = {} if blind or not isinstance(case.output, dict) else dict(case.output)
        base.pop("reasoning", None)
        base.pop("score", None)
        base["label"] = label
        text = self.cleaned_data["text"].strip()
        if text:
            base["text"] = text
        else:
            base.pop("text", None)
        return base


class QueueTaggedSelect(forms.Select):
    """A select whose options say which queues each person works (`data-queues`), so the page can offer only the
    people of the queue picked beside it."""

    def __init__(self, *args: Any, queues_of: dict[str, list[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queues_of = queues_of or {}

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option: dict[str, Any] = super().create_option(name, value, *args, **kwargs)
        if value:
            option["attrs"]["data-queues"] = " ".join(self.queues_of.get(str(value), []))
        return option


class ReassignForm(forms.Form):
    """An escalation manager moves a case to another queue of its category and/or hands it to a person, picked
    from those who may work a queue it can go to (`selectors.reassign_candidates`)."""

    queue = forms.ModelChoiceField(queryset=Queue.objects.none(), required=False, empty_label="— keep the queue —")
    assignee = forms.ChoiceField(
        required=False, help_text="Only people who may work the target queue; empty: nobody holds it."
    )
    reason = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2, "cols": 40}))

    def __init__(self, *args: Any, case: Case, candidates: dict[Any, list[Queue]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Audit work stays in the audit queue (the service refuses it too); the choices say so up front.
        field = self.fields["queue"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Queue.objects.filter(category_id=case.category_id).exclude(kind=QueueKind.AUDIT)
        queues_of = {person.get_username(): [str(q.pk) for q in queues] for person, queues in candidates.items()}
        assignee = self.fields["assignee"]
        assert isinstance(assignee, forms.ChoiceField)
        assignee.choices = [("", "— nobody —")] + [
            (person.get_username(), f"{person.get_username()} ({', '.join(q.slug for q in queues)})")
            for person, queues in candidates.items()
        ]
        assignee.widget = QueueTaggedSelect(choices=assignee.choices, queues_of=queues_of)
