"""`manage.py verify_audit`: check the audit log's hash chain, row by row, and name the first broken row."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance.events import verify_chain


class Command(BaseCommand):
    """Print "Audit chain OK: N events", or exit non-zero naming the first bad row (seq, id and what is wrong)."""

    help = "Verify the audit chain; exits non-zero, naming the first bad row, when it is broken."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, problem = verify_chain()
        if problem is not None:
            row_id = problem.event_id if problem.event_id is not None else "none"
            raise CommandError(
                f"Audit chain BROKEN at seq {problem.seq} (id {row_id}): {problem.message}. "
                f"The {checked} events before it are intact."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain OK: {checked} events"))
