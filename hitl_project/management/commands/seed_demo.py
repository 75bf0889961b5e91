"""`manage.py seed_demo`: the demo's people, categories, grants, model versions and a stream of cases.

Idempotent: everything is looked up before it is made, and the cases carry deterministic external ids, which
intake recognises, so a second run adds nothing. Categories, model versions and cases go through the same
services the admin and the API use, so the demo data is routed, versioned and audited like real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from guardian.shortcuts import assign_perm
from rest_framework.authtoken.models import Token

from cases.choices import QueueKind
from cases.models import Queue
from cases.services.intake import IntakeItem, submit_cases
from governance.choices import ModelStatus, Pattern, Stage
from governance.models import Category, ModelVersion
from governance.permissions import DATA_CURATOR, ESCALATION_MANAGER, MODEL_STEWARD, PRODUCT_OWNER, REVIEWER
from governance.services import create_category, parse_model_label, register_model_version
from hitl_project.demo_cases import ACTIVE_MODELS, CANARY_MODELS, LEADS, REFUNDS, SUPPORT, demo_cases
from hitl_project.roles import ensure_roles

ADMIN_URL = "http://127.0.0.1:8000/admin/"
DEFAULT_CASES = 300
BATCH_SIZE = 100
SEED_REASON = "Demo seed"


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
    DemoUser("escalation", "escalation-demo-pass", ESCALATION_MANAGER, "Emil", "Escalation"),
    DemoUser("product-owner", "product-owner-demo-pass", PRODUCT_OWNER, "Paula", "Owner"),
    DemoUser("model-steward", "model-steward-demo-pass", MODEL_STEWARD, "Max", "Steward"),
    DemoUser("data-curator", "data-curator-demo-pass", DATA_CURATOR, "Dana", "Curator"),
]
INTEGRATION_USERNAME = "integration"

# The three example categories of DESIGN.md, with the policies the demo shows off.
DEMO_CATEGORIES: list[dict[str, Any]] = [
    {
        "slug": SUPPORT,
        "name": "Support triage",
        "description": "Routes incoming support tickets to a topic and drafts a first reply.",
        "pattern": Pattern.EXCEPTION,
        "consequence": "low",
        "pii_fields": ["from"],
        "baseline_minutes_per_case": "4.00",
        "policy": {"auto_threshold": 0.90, "review_threshold": 0.60},
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
        "policy": {"auto_threshold": 0.85, "review_threshold": 0.60},
    },
]

# Which queue kinds each role works (object grants of `cases.work_queue`).
QUEUE_GRANTS = {
    "reviewer": (QueueKind.QUICK, QueueKind.FULL, QueueKind.AUDIT),
    "escalation": (QueueKind.ESCALATION, QueueKind.EXPERT),
}


class Command(BaseCommand):
    """Seed the demo: role users, the three example categories, their grants and model versions, and cases."""

    help = "Seed the demo data (idempotent): users per role, three categories, model versions and a case stream."
    requires_migrations_checks = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cases", type=int, default=DEFAULT_CASES, help=f"How many cases to submit (default {DEFAULT_CASES})."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count: int = options["cases"]
        if count < 0:
            raise CommandError("--cases must be 0 or more.")
        ensure_roles()
        users, new_users = self._users()
        integration, token = self._integration_user()
        admin = users["admin"]
        categories, new_categories = self._categories(admin)
        self._grants(users, integration, categories)
        new_versions = self._model_versions(admin, categories)
        new_cases = self._cases(integration, categories, count)
        self.stdout.write(
            f"Added {new_users} users, {new_categories} categories, {new_versions} model versions, "
            f"{new_cases} cases (everything else already existed)."
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

    def _categories(self, admin: User) -> tuple[dict[str, Category], int]:
        categories: dict[str, Category] = {}
        created_count = 0
        for spec in DEMO_CATEGORIES:
            existing = Category.objects.filter(slug=spec["slug"]).first()
            if existing is None:
                existing = create_category(user=admin, stage=Stage.LIVE, reason=SEED_REASON, **spec)
                created_count += 1
            categories[spec["slug"]] = existing
        return categories, created_count

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
        for demo in demo_cases(count):
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

    def _print_logins(self, token: Token) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"HITL Desk demo: {ADMIN_URL}"))
        self.stdout.write("Logins (username / password):")
        for spec in DEMO_USERS:
            self.stdout.write(f"  {spec.username:<15} {spec.password:<26} {spec.role or 'superuser'}")
        self.stdout.write(f"API token of the '{INTEGRATION_USERNAME}' service user (submits to all three categories):")
        self.stdout.write(f"  Authorization: Token {token.key}")
        self.stdout.write("Serve it with: python manage.py serve_demo")
