"""`manage.py seed_demo`: the demo's people, categories, grants, model versions, a month of history and a stream
of cases.

Idempotent: everything is looked up before it is made, and the cases carry deterministic external ids, which
intake recognises, so a second run adds nothing. Categories, model versions and cases go through the same
services the admin and the API use, so the demo data is routed, versioned and audited like real data.

The history (`hitl_project.demo.history`, `--days`, 30 by default) is played through the same services with the
clock moved back, then the hourly metric snapshots are backfilled over it, so the dashboard, the threshold advisor
and the alert rules have a past to read on a fresh `make demo`. The people, categories and model versions of a
fresh seed are made on the history's first day, so the trail reads in order: created, then worked, then today.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import time_machine
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rest_framework.authtoken.models import Token

from cases.choices import QueueKind
from cases.models import Queue
from cases.services.intake import IntakeItem, submit_cases
from governance.choices import ModelStatus, Pattern, Stage
from governance.models import Category, ModelVersion
from governance.permissions import DATA_CURATOR, ESCALATION_MANAGER, MODEL_STEWARD, PRODUCT_OWNER, REVIEWER
from governance.services import create_category, parse_model_label, register_model_version
from hitl_project.demo.cases import ACTIVE_MODELS, CANARY_MODELS, LEADS, REFUNDS, SUPPORT, demo_cases
from hitl_project.demo.history import DEFAULT_DAYS, MAX_DAYS, write_history
from hitl_project.demo.stories import STORIES
from hitl_project.roles import ensure_roles
from metrics.choices import AlertKind
from metrics.models import AlertRule
from metrics.services.alerts import update_alert_rule
from metrics.services.snapshots import hour_start, snapshot_metrics
from reviews.models import ReviewerCertification
from reviews.services import certify

ADMIN_URL = "http://127.0.0.1:8000/admin/"
DEFAULT_CASES = 300
BATCH_SIZE = 100
SEED_REASON = "Demo seed"
# The demo's categories see a few dozen cases a day: their pause rule and rubber-stamp alert look at a week.
PAUSE_WINDOW_HOURS = 7 * 24
RUBBER_STAMP_WINDOW_HOURS = 7 * 24


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str | None  # None: the superuser
    first_name: str = ""
    last_name: str = ""


# Simple, memorable passwords: this is a local demo, never a deployment.
DEMO_USERS = [
    DemoUser("admin", "admin-demo-pass", None),
    DemoUser("reviewer", "reviewer-demo-pass", REVIEWER, "Rita", "Reviewer"),
    # Rita's colleagues: their work fills the history (Sam is the refund queue's rubber-stamper).
    DemoUser("reviewer-lea", "reviewer-lea-demo-pass", REVIEWER, "Lea", "Lindqvist"),
    DemoUser("reviewer-sam", "reviewer-sam-demo-pass", REVIEWER, "Sam", "Swift"),
    DemoUser("escalation", "escalation-demo-pass", ESCALATION_MANAGER, "Emil", "Escalation"),
    DemoUser("product-owner", "product-owner-demo-pass", PRODUCT_OWNER, "Paula", "Owner"),
    DemoUser("model-steward", "model-steward-demo-pass", MODEL_STEWARD, "Max", "Steward"),
    DemoUser("data-curator", "data-curator-demo-pass", DATA_CURATOR, "Dana", "Curator"),
]
INTEGRATION_USERNAME = "integration"

# The three example categories of DESIGN.md, with the policies the demo shows off. The pause rule judges a week (at
# a few dozen reviews a day, the share refused over two days swings by fifteen points) against the top of the
# healthy override band, 30 %, and 20 % for refunds, where a wrong answer costs money. DESIGN.md's 5 % default
# would stop any of them within a day: a reviewed case is a low-confidence case, wrong far more often than the
# average one. The exception categories audit 5 % of what acts on its own, so the audited accuracy has a sample
# worth an interval.
DEMO_CATEGORIES: list[dict[str, Any]] = [
    {
        "slug": SUPPORT,
        "name": "Support triage",
        "description": "Routes incoming support tickets to a topic and drafts a first reply.",
        "pattern": Pattern.EXCEPTION,
        "consequence": "low",
        "pii_fields": ["from"],
        "baseline_minutes_per_case": "4.00",
        "policy": {
            "auto_threshold": 0.90,
            "review_threshold": 0.60,
            "audit_rate": 0.05,
            "pause_rejection_rate": 0.30,
            "pause_window_hours": PAUSE_WINDOW_HOURS,
        },
    },
    {
        "slug": REFUNDS,
        "name": "Refund requests",
        "description": "Decides refund requests: approve, partial refund, deny, or hand over to legal.",
        "pattern": Pattern.VALIDATOR,
        "consequence": "high",
        "pii_fields": ["customer_email", "customer_name"],
        "baseline_minutes_per_case": "7.50",
        "policy": {
            "auto_threshold": 0.95,
            "review_threshold": 0.70,
            "high_value_amount": Decimal("500"),
            "sensitive_labels": ["legal"],
            "pause_rejection_rate": 0.20,
            "pause_window_hours": PAUSE_WINDOW_HOURS,
        },
    },
    {
        "slug": LEADS,
        "name": "Lead qualification",
        "description": "Scores inbound leads as hot, warm, cold or disqualified and drafts the first answer.",
        "pattern": Pattern.EXCEPTION,
        "consequence": "medium",
        "pii_fields": ["contact", "email", "phone"],
        "baseline_minutes_per_case": "6.00",
        "policy": {
            "auto_threshold": 0.85,
            "review_threshold": 0.60,
            "audit_rate": 0.05,
            "pause_rejection_rate": 0.30,
            "pause_window_hours": PAUSE_WINDOW_HOURS,
        },
    },
]

# Which queue kinds each role works (object grants of `cases.work_queue`).
QUEUE_GRANTS = {
    "reviewer": (QueueKind.QUICK, QueueKind.FULL, QueueKind.AUDIT),
    "reviewer-lea": (QueueKind.QUICK, QueueKind.FULL, QueueKind.AUDIT),
    "reviewer-sam": (QueueKind.QUICK, QueueKind.FULL, QueueKind.AUDIT),
    "escalation": (QueueKind.ESCALATION, QueueKind.EXPERT),
}


# Reviewers the demo's data curator certified (labels they make pass the quality gate).
CERTIFIED_REVIEWERS = ("reviewer", "reviewer-lea")


class Command(BaseCommand):
    """Seed the demo: role users, the three example categories, their grants and model versions, a history of
    backdated work with its metric snapshots, and a stream of cases waiting now."""

    help = (
        "Seed the demo data (idempotent): users per role, three categories, model versions, a month of history "
        "and a case stream."
    )
    requires_migrations_checks = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cases", type=int, default=DEFAULT_CASES, help=f"How many cases to submit (default {DEFAULT_CASES})."
        )
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_DAYS,
            help=f"Days of backdated history before today (default {DEFAULT_DAYS}, at most {MAX_DAYS}; 0: none).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count: int = options["cases"]
        days: int = options["days"]
        if count < 0:
            raise CommandError("--cases must be 0 or more.")
        if not 0 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 0 and {MAX_DAYS}.")
        started = time.perf_counter()
        now = timezone.now()
        history_end = hour_start(now)
        # A fresh demo is founded the hour before its history begins; what exists already keeps its dates.
        founding = history_end - timedelta(days=days, hours=1)
        with time_machine.travel(founding, tick=False) if days else nullcontext():
            ensure_roles()
            users, new_users = self._users()
            integration, token = self._integration_user()
            admin = users["admin"]
            categories, created = self._categories(admin)
            self._grants(users, integration, categories)
            self._certify(users, categories)
            self._tune_alert_rules(users["product-owner"], created)
            new_versions = self._model_versions(admin, categories)
        history = write_history(
            users=users,
            integration=integration,
            categories=categories,
            end=history_end,
            days=days,
            progress=self.stdout.write,
        )
        new_cases = self._cases(integration, categories, count)
        snapshots = self._snapshots(days, now) if days else 0
        self.stdout.write(
            f"Added {new_users} users, {len(created)} categories, {new_versions} model versions, {new_cases} cases "
            f"(everything else already existed); a {days}-day history of {history.cases} cases, {history.decisions} "
            f"decisions and {history.breaches} SLA breaches; {snapshots} metric snapshots "
            f"({time.perf_counter() - started:.0f} s)."
        )
        self._print_logins(token)

    def _users(self) -> tuple[dict[str, User], int]:
        users: dict[str, User] = {}
        created_count = 0
        for spec in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=spec.username,
                defaults={
                    "email": f"{spec.username}@demo.hitl.local",
                    "first_name": spec.first_name,
                    "last_name": spec.last_name,
                    # Staff: every role works in the admin.
                    "is_staff": True,
                    "is_superuser": spec.role is None,
                },
            )
            if created:
                # Only on creation: a password someone changed since is theirs to keep.
                user.set_password(spec.password)
                user.save(update_fields=["password"])
                created_count += 1
            if spec.role:
                user.groups.add(Group.objects.get(name=spec.role))
            users[spec.username] = user
        return users, created_count

    def _integration_user(self) -> tuple[User, Token]:
        # A service account: it submits over the API with its token and never logs in to the admin.
        user, created = User.objects.get_or_create(
            username=INTEGRATION_USERNAME, defaults={"email": "integration@demo.hitl.local"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        token, _ = Token.objects.get_or_create(user=user)
        return user, token

    def _categories(self, admin: User) -> tuple[dict[str, Category], list[Category]]:
        categories: dict[str, Category] = {}
        created: list[Category] = []
        for spec in DEMO_CATEGORIES:
            existing = Category.objects.filter(slug=spec["slug"]).first()
            if existing is None:
                existing = create_category(user=admin, stage=Stage.LIVE, reason=SEED_REASON, **spec)
                created.append(existing)
            categories[spec["slug"]] = existing
        return categories, created

    def _tune_alert_rules(self, owner: User, created: list[Category]) -> None:
        """The product owner's first edit of a new demo category: judge reviewers over a week. The default rule
        looks at a day, which at a few dozen cases a day never holds the 50 decisions it needs to say anything."""
        for rule in AlertRule.objects.filter(category__in=created, kind=AlertKind.RUBBER_STAMPING):
            update_alert_rule(
                rule=rule,
                user=owner,
                changes={"window_hours": RUBBER_STAMP_WINDOW_HOURS},
                reason="A few dozen cases a day: a reviewer's week, not a day, shows whether they rubber-stamp.",
            )

    @transaction.atomic
    def _grants(self, users: dict[str, User], integration: User, categories: dict[str, Category]) -> None:
        # assign_perm is get-or-create underneath, so granting again is harmless.
        for category in categories.values():
            queues = {queue.kind: queue for queue in Queue.objects.filter(category=category)}
            for username, kinds in QUEUE_GRANTS.items():
                for kind in kinds:
                    if kind in queues:
                        assign_perm("cases.work_queue", users[username], queues[kind])
            assign_perm("governance.view_category", users["product-owner"], category)
            assign_perm("governance.change_category", users["product-owner"], category)
            assign_perm("governance.submit_case", integration, category)

    def _certify(self, users: dict[str, User], categories: dict[str, Category]) -> None:
        """The careful reviewers are certified in every category (the rubber-stamper is not), so the demo's labels
        have some past the quality gate; a certification that exists already is left as it is."""
        for category in categories.values():
            for username in CERTIFIED_REVIEWERS:
                if not ReviewerCertification.objects.filter(reviewer=users[username], category=category).exists():
                    certify(
                        curator=users["data-curator"],
                        reviewer=users[username],
                        category=category,
                        reason=f"{SEED_REASON}: passed the calibration set",
                    )

    def _model_versions(self, admin: User, categories: dict[str, Category]) -> int:
        wanted = [(slug, label, ModelStatus.ACTIVE) for slug, label in ACTIVE_MODELS.items()]
        wanted += [(slug, label, ModelStatus.CANARY) for slug, label in CANARY_MODELS.items()]
        created_count = 0
        for slug, label, status in wanted:
            name, version = parse_model_label(label)
            if ModelVersion.objects.filter(category=categories[slug], name=name, version=version).exists():
                continue
            register_model_version(
                category=categories[slug],
                name=name,
                version=version,
                user=admin,
                status=status,
                reason=f"{SEED_REASON}: the category's {status} model",
                notes="Registered by the demo seed.",
                metrics={"holdout_accuracy": 0.91 if status == ModelStatus.ACTIVE else 0.93},
            )
            created_count += 1
        return created_count

    def _cases(self, integration: User, categories: dict[str, Category], count: int) -> int:
        created_count = 0
        batch: list[IntakeItem] = []
        done = 0
        # The live stream carries on where the history's stories have got to (the drift, for one).
        skews = {slug: story.live_skew() for slug, story in STORIES.items()}
        for demo in demo_cases(count, skews=skews):
            batch.append(IntakeItem(category=categories[demo.category_slug], **demo.fields))
            if len(batch) == BATCH_SIZE:
                created_count += self._submit(integration, batch)
                done += len(batch)
                batch = []
                self.stdout.write(f"seeding cases: {done}/{count} ({created_count} new)")
        if batch:
            created_count += self._submit(integration, batch)
            done += len(batch)
            self.stdout.write(f"seeding cases: {done}/{count} ({created_count} new)")
        return created_count

    def _submit(self, integration: User, batch: list[IntakeItem]) -> int:
        return sum(created for _, created in submit_cases(user=integration, items=batch))

    def _snapshots(self, days: int, now: datetime) -> int:
        """Backfill the hourly snapshots over the history, as the hourly job would have stored them. The job skips
        the hours it has, so a second run in the same hour writes none, and a later one only the hours since."""
        self.stdout.write(f"seeding metric snapshots: {days * 24} hours per category")
        if connection.vendor == "sqlite":
            # SQLite plans with statistics only once ANALYZE has gathered them; without, a window's decisions are
            # found by walking every case of the category. A month of data is worth the planner's look (and the
            # dashboard's queries afterwards profit too). PostgreSQL's autovacuum does the same on its own.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        with transaction.atomic():  # one commit for a month of hours, not one each
            written: int = snapshot_metrics(now=now, catch_up_hours=days * 24)["written"]
        return written

    def _print_logins(self, token: Token) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"HITL Desk demo: {ADMIN_URL}"))
        self.stdout.write("Logins (username / password):")
        for spec in DEMO_USERS:
            self.stdout.write(f"  {spec.username:<15} {spec.password:<26} {spec.role or 'superuser'}")
        self.stdout.write(f"API token of the '{INTEGRATION_USERNAME}' service user (submits to all three categories):")
        self.stdout.write(f"  Authorization: Token {token.key}")
        self.stdout.write("Serve it with: python manage.py serve_demo")
