"""Routing at intake: one read of what a category's routing needs, for a run of items of that category.

The category with its policy (fresh, unless the request just read it), its queues, the model versions the items
name and its built-in ones, which of the items' segments it has seen in 30 days, and the top decile of its values;
then each item routed against that by the pure `cases.routing.route_case` and built into an unsaved `Case`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db.models import Exists

from cases.choices import AuditStatus, CaseStatus, QueueKind, Route
from cases.models import Case, Queue, ShadowPrediction
from cases.routing import AuditContext, CaseFacts, CategoryState, PolicyRules, RoutingResult, route_case
from cases.services.intake.item import IntakeItem
from cases.services.prediction import (
    PredictionUnavailable,
    check_predictable,
    intake_versions,
    prediction_reason,
    predictor_for,
)
from governance.model_input import input_text
from governance.models import Category, ModelVersion, Policy
from governance.services import model_version_for_intake

if TYPE_CHECKING:
    from datetime import datetime

    from django.contrib.auth.models import User

# How far back "a segment not seen recently" looks, and how many recent values estimate the top decile.
NEW_SEGMENT_DAYS = 30
TOP_DECILE_SAMPLE = 1000
TOP_DECILE_CACHE_SECONDS = 300
# A bulk of 500 may name many segments; its probes go in statements of this many.
SEGMENT_PROBES_PER_QUERY = 50


def segment_key(segment: dict[str, Any]) -> str:
    """The segment as canonical text (hashed when long), so 'seen before' is one indexed lookup."""
    if not segment:
        return ""
    text = json.dumps(segment, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= 255 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def policy_rules(policy: Policy) -> PolicyRules:
    return PolicyRules(
        version=policy.version,
        auto_threshold=policy.auto_threshold,
        review_threshold=policy.review_threshold,
        auto_share=policy.auto_share,
        high_value_amount=policy.high_value_amount,
        sensitive_labels=frozenset(policy.sensitive_labels),
        sensitive_rules=frozenset(policy.sensitive_rules),
        audit_rate=policy.audit_rate,
        audit_multipliers=dict(policy.audit_multipliers),
    )


def category_state(category: Category) -> CategoryState:
    return CategoryState(pattern=category.pattern, stage=category.stage, paused=category.paused)


def top_decile_value(category: Category) -> Decimal | None:
    """The value above which a case is in the category's top 10 %, estimated from recent cases (cached)."""
    key = f"hitl:top-decile:{category.pk}"
    cached = cache.get(key)
    if cached is not None:
        return None if cached == "none" else Decimal(cached)
    recent = Case.objects.filter(category=category, value__isnull=False).order_by("-created_at")
    values: list[Decimal] = sorted(
        v for v in recent.values_list("value", flat=True)[:TOP_DECILE_SAMPLE] if v is not None
    )
    result = values[int(len(values) * 0.9)] if len(values) >= 10 else None
    cache.set(key, "none" if result is None else str(result), TOP_DECILE_CACHE_SECONDS)
    return result


def seen_segment_keys(category: Category, keys: set[str], now: datetime) -> set[str]:
    """Which of these segment keys the category has had a case for in the last 30 days.

    One statement, one EXISTS probe per key: each stops at the first matching row of the (category, segment_key,
    created_at) index, however many cases the segment has (listing the segment's cases to return one key grew
    with the table)."""
    wanted = sorted(k for k in keys if k)
    if not wanted:
        return set()
    since = now - timedelta(days=NEW_SEGMENT_DAYS)
    seen: set[str] = set()
    for start in range(0, len(wanted), SEGMENT_PROBES_PER_QUERY):
        chunk = wanted[start : start + SEGMENT_PROBES_PER_QUERY]
        probes = {
            f"seen_{n}": Exists(Case.objects.filter(category=category, segment_key=key, created_at__gte=since))
            for n, key in enumerate(chunk)
        }
        # The probes need a row to hang on: any one case will do (none at all means no segment was ever seen).
        row = Case.objects.order_by().annotate(**probes).values(*probes).first()
        if row is not None:
            seen |= {key for n, key in enumerate(chunk) if row[f"seen_{n}"]}
    return seen


def _facts(item: IntakeItem) -> CaseFacts:
    return CaseFacts(
        category_slug=item.category.slug,
        external_id=item.external_id,
        label=str((item.output or {}).get("label", "")),
        confidence=_answered_confidence(item),
        value=item.value,
        rules_fired=tuple(item.rules_fired),
    )


def _answered_confidence(item: IntakeItem) -> float:
    # Only answered items reach routing: the built-in model has filled in what the client left out.
    assert item.confidence is not None, "an item reached routing without a confidence"
    return item.confidence


def _build_case(
    item: IntakeItem,
    *,
    policy: Policy,
    model_version: ModelVersion,
    queues: dict[str, Queue],
    result: RoutingResult,
    seg_key: str,
    now: datetime,
) -> Case:
    is_auto = result.route == Route.AUTO
    queue_kind = QueueKind.AUDIT if is_auto and result.audit_sampled else result.queue_kind
    queue = queues.get(queue_kind) if queue_kind else None
    reasons = list(result.reasons)
    if queue_kind and queue is None:
        # Never lose a case: a category without the right queue sends it to its full-review queue.
        queue = queues.get(QueueKind.FULL)
        reasons.append(f"The category has no {queue_kind} queue; the case waits in its full-review queue.")
    return Case(
        category=item.category,
        external_id=item.external_id,
        input=item.input,
        output=item.output,
        confidence=_answered_confidence(item),
        model_version=model_version,
        rules_fired=item.rules_fired,
        value=item.value,
        segment=item.segment,
        segment_key=seg_key,
        customer_ref=item.customer_ref,
        priority=item.priority,
        route=result.route,
        route_reasons=reasons,
        policy_version=policy.version,
        audit_sampled=result.audit_sampled,
        audit_draw=result.draws,
        queue=queue,
        due_at=now + queue.sla if queue is not None else None,
        status=CaseStatus.AUTO_APPROVED if is_auto else CaseStatus.QUEUED,
        final_output=item.output if is_auto else None,
        audit_status=AuditStatus.PENDING if is_auto and result.audit_sampled else AuditStatus.NONE,
        decided_at=now if is_auto else None,
    )


class Router:
    """Routes a run of items of one category against one read of its state, policy, queues and history."""

    def __init__(
        self, category: Category, now: datetime, user: User | None, *, fresh: bool, items: list[IntakeItem]
    ) -> None:
        # Fresh from the database (the pause flag or the policy may have just changed), unless the caller read it,
        # with its policy, for this very submission.
        self.category = category if fresh else Category.objects.select_related("policy").get(pk=category.pk)
        self.policy = self.category.policy
        self.queues = {q.kind: q for q in Queue.objects.filter(category=self.category)}
        self.now = now
        self.user = user
        # The built-in versions and the versions the run's items name, in one query.
        self.builtin, self.model_versions = intake_versions(self.category, [item.model_version for item in items])
        # external id -> why the answer is the built-in model's; -> what the built-in version in shadow said.
        self.predicted: dict[str, str] = {}
        self.shadow_answers: dict[str, tuple[str, float]] = {}
        self._seen_segments: set[str] = set()
        self._top_decile: Decimal | None = None
        self._top_decile_loaded = False

    def prepare(self, items: list[IntakeItem]) -> list[IntakeItem]:
        """Look up what routing needs, once for the run; returns the items with the built-in model's answer filled
        in where the client sent none (ValidationError naming `output`, or PredictionUnavailable, if it cannot)."""
        items = self._answer_unanswered(items)
        self._answer_in_shadow(items)
        for label in self.unknown_labels(items):
            # Registered in its own transaction: a new version is kept even if this submission fails later.
            self.model_versions[label] = model_version_for_intake(category=self.category, label=label, user=self.user)
        self._seen_segments = seen_segment_keys(self.category, {segment_key(i.segment) for i in items}, self.now)
        return items

    def unknown_labels(self, items: list[IntakeItem]) -> set[str]:
        """The model versions the items name that the category has never seen."""
        return {item.model_version for item in items} - set(self.model_versions)

    def _texts(self, items: list[IntakeItem]) -> list[str]:
        return [input_text(item.input, pii_fields=self.category.pii_fields) for item in items]

    def _answer_unanswered(self, items: list[IntakeItem]) -> list[IntakeItem]:
        unanswered = [index for index, item in enumerate(items) if item.output is None or item.confidence is None]
        if not unanswered:
            return items
        for label in {items[index].model_version for index in unanswered}:
            version = check_predictable(category=self.category, versions=self.builtin, model_version=label)
        # One call for the whole run: a bulk of 500 is one pass through the model, not 500.
        answers = predictor_for(version).predict(self._texts([items[index] for index in unanswered]))
        answered = list(items)
        for index, (label, confidence) in zip(unanswered, answers, strict=True):
            item = items[index]
            answered[index] = replace(item, output={"label": label}, confidence=confidence, model_version=version.label)
            self.predicted[item.external_id] = prediction_reason(version, label, confidence)
        return answered

    def _answer_in_shadow(self, items: list[IntakeItem]) -> None:
        shadow = self.builtin.shadow
        if shadow is None:
            return
        try:
            predictor = predictor_for(shadow)
        except PredictionUnavailable:
            # A version on trial never stops intake: it is just not measured on these cases (the refusal is logged).
            return
        for item, answer in zip(items, predictor.predict(self._texts(items)), strict=True):
            self.shadow_answers[item.external_id] = answer

    def top_decile(self) -> Decimal | None:
        if not self._top_decile_loaded:
            self._top_decile = top_decile_value(self.category)
            self._top_decile_loaded = True
        return self._top_decile

    def build(self, item: IntakeItem) -> Case:
        model_version = self.model_versions[item.model_version]
        seg_key = segment_key(item.segment)
        context = AuditContext(
            top_decile_value=self.top_decile() if item.value is not None else None,
            segment_is_new=bool(seg_key) and seg_key not in self._seen_segments,
        )
        # A segment counts as seen from its first case on, also within one bulk submission.
        self._seen_segments.add(seg_key)
        result = route_case(
            _facts(item), category_state(self.category), policy_rules(self.policy), model_version.status, context
        )
        case = _build_case(
            item,
            policy=self.policy,
            model_version=model_version,
            queues=self.queues,
            result=result,
            seg_key=seg_key,
            now=self.now,
        )
        case.category = self.category
        if item.external_id in self.predicted:
            # Where the answer came from comes first: every reason after it reasons about that answer.
            case.route_reasons.insert(0, self.predicted[item.external_id])
        return case

    def shadow_predictions(self, cases: list[Case]) -> list[ShadowPrediction]:
        shadow = self.builtin.shadow
        if shadow is None:
            return []
        return [
            ShadowPrediction(case=case, model_version=shadow, label=label[:200], confidence=confidence)
            for case in cases
            if case.external_id in self.shadow_answers
            for label, confidence in [self.shadow_answers[case.external_id]]
        ]
