"""Submitting: who may submit to which category, and storing routed cases with their history and audit events,
idempotently on (category, external_id)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from cases.models import Case, ShadowPrediction
from cases.services.intake.item import IntakeItem
from cases.services.intake.router import Router
from governance import events
from governance.choices import AuditKind
from governance.history import history_for_rows
from governance.models import Category
from governance.permissions import has_perm_on, with_grant

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from django.contrib.auth.models import User

SUBMIT_PERM = "governance.submit_case"


def not_submittable_message(slug: str) -> str:
    # The same words whether the category is missing or only not granted: names cannot be probed.
    return f"You may not submit cases to category {slug!r}: it needs governance.submit_case on it (or does not exist)."


def submittable_categories(*, user: User, slugs: Iterable[object]) -> dict[str, Category]:
    """The categories among `slugs` (ignoring anything not a string) that exist and that the user may submit to:
    one query for the categories with their policies and the user's grants on them."""
    wanted = {slug for slug in slugs if isinstance(slug, str) and slug}
    if not wanted:
        return {}
    found = with_grant(Category.objects.filter(slug__in=wanted).select_related("policy"), user, SUBMIT_PERM)
    return {category.slug: category for category in found if has_perm_on(user, SUBMIT_PERM, category)}


def _routed_event(case: Case, actor: User | None) -> events.EventSpec:
    return events.EventSpec(
        kind=AuditKind.CASE_ROUTED,
        actor=actor,
        category_slug=case.category.slug,
        case_id=case.pk,
        payload={
            "external_id": case.external_id,
            "route": case.route,
            "reasons": case.route_reasons,
            "queue": case.queue.slug if case.queue else None,
            "status": case.status,
            "confidence": case.confidence,
            "model_version": case.model_version.label,
            "model_status": case.model_version.status,
            "policy_version": case.policy_version,
            "audit_sampled": case.audit_sampled,
            "draws": case.audit_draw,
        },
    )


def _existing(category: Category, external_ids: list[str]) -> dict[str, Case]:
    found = Case.objects.select_related("category", "queue", "model_version").filter(
        category=category, external_id__in=external_ids
    )
    return {case.external_id: case for case in found}


def submit_case(*, user: User | None, item: IntakeItem) -> tuple[Case, bool]:
    """Route and store one case; (case, True) when created, (existing case, False) for a repeat."""
    return submit_cases(user=user, items=[item])[0]


def submit_cases(
    *, user: User | None, items: list[IntakeItem], categories_fresh: bool = False
) -> list[tuple[Case, bool]]:
    """Route and store many cases, one database round of writes per category; results in the input order.

    A repeat of an existing (category, external_id), or of an earlier item in the same list, returns that case
    with created=False. If a concurrent request inserts one of the same ids first, this falls back to storing
    the items one by one, so every item still gets exactly one case.

    `categories_fresh`: the items' categories were read, with their policies, for this very submission (the API
    reads them per request to check the grant); otherwise intake reads them again, since a pause or a policy
    change must show at once.
    """
    results: list[tuple[Case, bool] | None] = [None] * len(items)
    now = timezone.now()
    by_category: dict[int, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        by_category[item.category.pk].append(index)
    for indexes in by_category.values():
        _submit_category_run(user=user, items=items, indexes=indexes, results=results, now=now, fresh=categories_fresh)
    return [r for r in results if r is not None]


def _submit_category_run(
    *,
    user: User | None,
    items: list[IntakeItem],
    indexes: list[int],
    results: list[tuple[Case, bool] | None],
    now: datetime,
    fresh: bool,
) -> None:
    category = items[indexes[0]].category
    run_items = [items[i] for i in indexes]
    router = Router(category, now, user, fresh=fresh, items=run_items)
    # One case: insert first and let the unique index find a repeat (nearly every submission is new). Several,
    # or one naming a model version never seen (a repeat must not register it): look the repeats up first.
    single = len(indexes) == 1 and not router.unknown_labels(run_items)
    existing = {} if single else _existing(category, [item.external_id for item in run_items])
    new_indexes: list[int] = []
    first_index_of: dict[str, int] = {}
    for index in indexes:
        external_id = items[index].external_id
        if external_id in existing:
            results[index] = (existing[external_id], False)
        elif external_id in first_index_of:
            continue  # a repeat within this submission: filled in once the first one is stored
        else:
            first_index_of[external_id] = index
            new_indexes.append(index)
    if new_indexes:
        run = router.prepare([items[i] for i in new_indexes])
        try:
            created = _store(user=user, router=router, items=run)
        except IntegrityError:
            created = {}
            if len(new_indexes) > 1:
                # Lost a race for some of these ids: store them one by one, each then finds its own answer.
                for index in new_indexes:
                    _submit_category_run(user=user, items=items, indexes=[index], results=results, now=now, fresh=fresh)
            # One id: a repeat, or a race lost to another request; the stored case is the answer.
        for index in new_indexes:
            if results[index] is not None:
                continue
            external_id = items[index].external_id
            if external_id in created:
                results[index] = (created[external_id], True)
            else:
                results[index] = (_existing(category, [external_id])[external_id], False)
    for index in indexes:
        if results[index] is None:  # repeats within the submission
            # The first occurrence of this external id was answered above, so its result is not None.
            case, _ = results[first_index_of[items[index].external_id]]  # type: ignore[misc]
            results[index] = (case, False)


@transaction.atomic
def _store(*, user: User | None, router: Router, items: list[IntakeItem]) -> dict[str, Case]:
    """Insert the cases, their history rows and their audit events in one transaction.

    Rows go in sorted by external id, so two bulk submissions that overlap take their unique-index locks in the
    same order and cannot deadlock; the audit chain head is locked last, after the inserts.
    """
    cases = sorted((router.build(item) for item in items), key=lambda c: c.external_id)
    Case.objects.bulk_create(cases, batch_size=500)
    # Their history rows copied inside the database (one INSERT ... SELECT), not built again in Python; one case
    # or 500 take the same two statements.
    history_for_rows(
        Case.objects.filter(pk__in=[case.pk for case in cases]),
        user=user,
        reason="Submitted and routed",
        date=router.now,
        created=True,
    )
    ShadowPrediction.objects.bulk_create(router.shadow_predictions(cases))
    events.record_many([_routed_event(case, user) for case in cases])
    return {case.external_id: case for case in cases}
