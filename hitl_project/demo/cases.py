"""A deterministic stream of realistic demo cases for the three example categories (used by `seed_demo`).

Everything is drawn from one seeded random generator in a fixed order, so case number i is the same on every
run whatever the total: re-seeding submits the same external ids, which intake recognises and stores once.
The invented texts, names and companies the cases are made of are in `hitl_project.demo.texts`.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hitl_project.demo.texts import (
    COMPANIES,
    FIRST_NAMES,
    LAST_NAMES,
    LEAD_MESSAGES,
    LEAD_SOURCES,
    REFUND_MESSAGES,
    REFUND_REASONS,
    REGIONS,
    SUPPORT_KEYWORDS,
    SUPPORT_TOPICS,
    TIERS,
)

SEED = 20240611

SUPPORT = "support-triage"
REFUNDS = "refund-requests"
LEADS = "lead-qualification"

# The model versions the seed registers (active, plus a canary for support), and one it deliberately never
# registers: intake registers it on first sight and sends its cases to full review.
ACTIVE_MODELS = {SUPPORT: "triage-bert@2.3.0", REFUNDS: "refund-gbm@1.4.2", LEADS: "lead-scorer@0.9.1"}
CANARY_MODELS = {SUPPORT: "triage-bert@2.4.0"}
UNREGISTERED_MODEL = {LEADS: "lead-scorer@1.0.0-rc1"}


@dataclass(frozen=True)
class DemoCase:
    """One case as the integration would submit it: its category by slug, and the fields of a
    `cases.services.intake.IntakeItem` (external_id, input, output, confidence, model_version, ...).

    `truth_output` is what a careful person would have the case say (the right label, with its draft): the demo
    history's reviewers approve an output that matches it and correct one that does not. It is never submitted.
    """

    category_slug: str
    fields: dict[str, Any]
    truth_output: dict[str, Any] = field(default_factory=dict)

    @property
    def truth(self) -> str:
        return str(self.truth_output.get("label", ""))

    @property
    def model_is_right(self) -> bool:
        return bool(self.truth) and self.fields["output"].get("label") == self.truth


@dataclass(frozen=True)
class Skew:
    """How the model behaves on a case compared with its usual self, so the demo history can tell a story.

    `confidence_drop` lowers its confidence (drift: the traffic moved away from what it was trained on; being
    calibrated, it is then wrong more often too); `error_boost` makes it wrong more often at the same confidence
    (a segment it serves badly); `region` fixes the case's region, drawn by the caller, so that a skew can depend
    on it. The default is no skew: the live stream's cases are drawn exactly as they always were.
    """

    confidence_drop: float = 0.0
    error_boost: float = 0.0
    region: str | None = None


NO_SKEW = Skew()


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


class _Person:
    def __init__(self, rng: random.Random) -> None:
        self.first = rng.choice(FIRST_NAMES)
        self.last = rng.choice(LAST_NAMES)
        self.email = f"{_ascii(self.first)}.{_ascii(self.last)}@example.org"
        self.phone = f"+49 151 {rng.randint(1000000, 9999999)}"


def _confidence(rng: random.Random, alpha: float, beta: float, skew: Skew = NO_SKEW) -> float:
    """A model's confidence: mostly high, with a long tail of unsure cases, as real classifiers have."""
    return round(min(0.995, max(0.05, rng.betavariate(alpha, beta) - skew.confidence_drop)), 3)


def _predicted(rng: random.Random, truth: str, labels: list[str], confidence: float, skew: Skew = NO_SKEW) -> str:
    """The model's label: right with a probability that grows with its confidence, as a calibrated model is."""
    if rng.random() < 0.55 + 0.45 * confidence - skew.error_boost:
        return truth
    return rng.choice([label for label in labels if label != truth])


def _customer(rng: random.Random, prefix: str, pool: int) -> str:
    """A customer reference: about a third of cases come from a few regulars, as in real traffic."""
    number = rng.randrange(12) if rng.random() < 0.3 else 12 + rng.randrange(pool)
    return f"{prefix}-{10000 + number}"


def _support_case(rng: random.Random, external_id: str, skew: Skew = NO_SKEW) -> DemoCase:
    person = _Person(rng)
    truth = rng.choice(list(SUPPORT_TOPICS))
    fill = {
        "name": person.first,
        "email": person.email,
        "phone": person.phone,
        "order": f"ORD-{rng.randint(200000, 299999)}",
        "invoice": f"INV-2024-{rng.randint(1000, 9999)}",
        "amount": f"{rng.choice([19, 29, 49, 99])}.00",
        "date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "street": f"{rng.randint(1, 120)} {rng.choice(['Hauptstraße', 'Rue de la Paix', 'Via Roma', 'Main St'])}",
    }
    subject, body, right_reply = rng.choice(SUPPORT_TOPICS[truth])
    subject, body = subject.format(**fill), body.format(**fill)
    urgent = rng.random() < 0.05
    if urgent:
        subject = "URGENT: " + subject
        body += " This is blocking our whole team, please help today."
    canary = rng.random() < 0.12
    confidence = _confidence(rng, 6.0, 1.6, skew)
    label = _predicted(rng, truth, list(SUPPORT_TOPICS), confidence, skew)
    output: dict[str, Any] = {"label": label, "reasoning": f"The ticket {SUPPORT_KEYWORDS[label]}."}
    # The draft answers the ticket the model thinks it read: a wrong label comes with a wrong draft.
    drafts = [reply for subj, _, reply in SUPPORT_TOPICS[label] if subj == subject] or [SUPPORT_TOPICS[label][0][2]]
    if label != "feedback" or rng.random() < 0.5:
        output["text"] = drafts[0].format(**fill)
    customer_ref = _customer(rng, "CUST", 400)
    return DemoCase(
        SUPPORT,
        dict(
            external_id=external_id,
            input={
                "subject": subject,
                "body": body,
                "from": f"{person.first} {person.last} <{person.email}>",
                "language": "en",
            },
            output=output,
            confidence=confidence,
            model_version=CANARY_MODELS[SUPPORT] if canary else ACTIVE_MODELS[SUPPORT],
            rules_fired=["repeat_contact"] if rng.random() < 0.2 else [],
            segment={
                "channel": rng.choice(["email", "email", "chat", "phone"]),
                "region": skew.region or rng.choice(REGIONS),
                "tier": rng.choice(TIERS),
            },
            priority="urgent" if urgent else "normal",
            customer_ref=customer_ref,
        ),
        {"label": truth, "text": right_reply.format(**fill)},
    )


def _refund_case(rng: random.Random, external_id: str, skew: Skew = NO_SKEW) -> DemoCase:
    person = _Person(rng)
    reason, truth, why, (min_days, max_days) = rng.choice(REFUND_REASONS)
    # Order values are log-normal, as shop baskets are: most small, a few above the 500 high-value limit.
    amount = Decimal(str(round(min(4000.0, rng.lognormvariate(4.8, 1.0)), 2))).quantize(Decimal("0.01"))
    currency = rng.choice(["EUR", "EUR", "USD", "GBP"])
    order = f"ORD-{rng.randint(200000, 299999)}"
    days = rng.randint(min_days, max_days)
    if days > 30 and truth == "partial":
        truth, why = "deny", "a change of mind outside the 30-day return window"
    confidence = _confidence(rng, 7.0, 1.5, skew)
    labels = ["approve", "partial", "deny", "legal"]
    label = _predicted(rng, truth, labels, confidence, skew)
    partial = (amount * Decimal("0.85")).quantize(Decimal("0.01"))

    def answer(decision: str) -> dict[str, Any]:
        message = REFUND_MESSAGES[decision].format(
            name=person.first, amount=amount, currency=currency, order=order, partial=partial
        )
        if not message:
            return {}
        refund = amount if decision == "approve" else partial if decision == "partial" else 0
        return {"text": message, "refund_amount": str(refund)}

    window = "inside" if days <= 30 else "outside"
    basis = why if label == truth else f"closest precedent is a {label} case"
    output: dict[str, Any] = {
        "label": label,
        "reasoning": f"{basis[0].upper()}{basis[1:]}; delivered {days} days ago ({window} the 30-day window).",
    }
    output |= answer(label)
    rules = []
    if truth == "legal":
        rules.append("chargeback_mentioned")
    if days > 30:
        rules.append("outside_return_window")
    urgent = truth == "legal" or rng.random() < 0.03
    return DemoCase(
        REFUNDS,
        dict(
            external_id=external_id,
            input={
                "order_id": order,
                "amount": str(amount),
                "currency": currency,
                "reason": reason,
                "days_since_delivery": days,
                "customer_email": person.email,
                "customer_name": f"{person.first} {person.last}",
                "payment_method": rng.choice(["card", "card", "paypal", "invoice"]),
            },
            output=output,
            confidence=confidence,
            model_version=ACTIVE_MODELS[REFUNDS],
            rules_fired=rules,
            value=amount,
            segment={
                "channel": rng.choice(["web", "web", "email", "app"]),
                "region": skew.region or rng.choice(REGIONS),
                "tier": rng.choice(TIERS),
            },
            priority="urgent" if urgent else "normal",
            customer_ref=_customer(rng, "CUST", 400),
        ),
        {"label": truth, **answer(truth)},
    )


def _lead_case(rng: random.Random, external_id: str, skew: Skew = NO_SKEW) -> DemoCase:
    person = _Person(rng)
    company, industry = rng.choice(COMPANIES)
    employees = rng.choice([8, 15, 25, 40, 60, 120, 150, 400])
    message, truth = rng.choice(LEAD_MESSAGES)
    message = message.format(employees=employees)
    source = rng.choice(LEAD_SOURCES)
    confidence = _confidence(rng, 4.0, 1.8, skew)
    labels = ["hot", "warm", "cold", "disqualified"]
    label = _predicted(rng, truth, labels, confidence, skew)
    # Expected first-year deal value: seats x list price, which lets the audit stratify by value.
    value = Decimal(employees * rng.choice([29, 39, 49]) * 12).quantize(Decimal("0.01"))
    unregistered = rng.random() < 0.04
    output: dict[str, Any] = {
        "label": label,
        "score": round(confidence * 100),
        "reasoning": f"{employees} employees in {industry}; the message reads as {truth} intent.",
    }
    first_answer = f"Hi {person.first}, thanks for reaching out about {company}. Would a 30-minute call work?"
    if label in ("hot", "warm"):
        output["text"] = first_answer
    size = "enterprise" if employees >= 150 else "midmarket" if employees >= 40 else "smb"
    return DemoCase(
        LEADS,
        dict(
            external_id=external_id,
            input={
                "company": company,
                "industry": industry,
                "employees": employees,
                "contact": f"{person.first} {person.last}",
                "email": person.email,
                "phone": person.phone,
                "message": message,
                "source": source,
            },
            output=output,
            confidence=confidence,
            model_version=UNREGISTERED_MODEL[LEADS] if unregistered else ACTIVE_MODELS[LEADS],
            value=value,
            segment={"channel": source, "region": skew.region or rng.choice(REGIONS), "tier": size},
            priority="urgent" if truth == "hot" and employees >= 150 else "normal",
            # The account is the company: every lead from one company shares it.
            customer_ref=f"ACC-{1001 + COMPANIES.index((company, industry))}",
        ),
        {"label": truth, **({"text": first_answer} if truth in ("hot", "warm") else {})},
    )


# How each category makes a case, and the external ids of its live stream (case number i is FIRST_NUMBER + i).
MAKERS: dict[str, Callable[[random.Random, str, Skew], DemoCase]] = {
    SUPPORT: _support_case,
    REFUNDS: _refund_case,
    LEADS: _lead_case,
}
ID_PREFIXES = {SUPPORT: "TCK", REFUNDS: "RR", LEADS: "LEAD"}
FIRST_NUMBER = {SUPPORT: 100000, REFUNDS: 500000, LEADS: 700000}


def make_case(category_slug: str, rng: random.Random, external_id: str, skew: Skew = NO_SKEW) -> DemoCase:
    """One case of the category, drawn from `rng` (the demo history draws its days with this)."""
    return MAKERS[category_slug](rng, external_id, skew)


def demo_cases(count: int, seed: int = SEED, skews: dict[str, Skew] | None = None) -> Iterator[DemoCase]:
    """The first `count` demo cases: support tickets, refund requests and leads, mixed as a day's traffic is.

    `skews` gives a category's model a skew for the whole stream (the seed passes where the history's drift has
    got to, so the live cases carry on from the past)."""
    rng = random.Random(seed)
    slugs = list(MAKERS)
    for number in range(1, count + 1):
        slug = rng.choices(slugs, weights=[45, 30, 25])[0]
        external_id = f"{ID_PREFIXES[slug]}-{FIRST_NUMBER[slug] + number}"
        yield make_case(slug, rng, external_id, (skews or {}).get(slug, NO_SKEW))
