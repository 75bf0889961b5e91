"""`manage.py verify_audit`: check the audit trail (every chain, the anchors, the bound rows) and name the first
broken row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.events import read_anchors, verify_chain


class Command(BaseCommand):
    """Print "Audit trail OK: ...", or exit non-zero naming the first bad row (chain, seq, id and how it broke)."""

    help = "Verify the audit trail; exits non-zero, naming the first bad row, when it is broken."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchors",
            type=Path,
            help="An anchor log to check against (default: AUDIT_ANCHOR_FILE), e.g. a copy kept elsewhere.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        anchors = read_anchors(options["anchors"]) if options["anchors"] else None
        result = verify_chain(anchors=anchors)
        if result.problem is not None:
            raise CommandError(
                f"Audit trail BROKEN in {result.problem.describe()}. {result.checked} events were checked before it."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit trail OK: {result.checked} events in {result.chains} chains, "
                f"{result.anchors} anchors and {result.bound} bound rows match"
            )
        )
