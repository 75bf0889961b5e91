"""`manage.py runjob NAME [--category SLUG]`: run one job once, now, in this process (no worker or Redis needed)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.models import Category
from hitl_project.cron import CATEGORY_JOBS, JOBS

KNOWN = sorted([*JOBS, *(f"{name} --category SLUG" for name in CATEGORY_JOBS)])


class Command(BaseCommand):
    """Run a job of hitl_project.cron.JOBS (or, with --category, of CATEGORY_JOBS) by its name and print its summary.

    Exits non-zero when the name is unknown, when the job raises, or when its summary says `"ok": false`
    (e.g. verify_audit found a broken chain, train_model refused), so scripts can rely on the exit code; a
    refusal's reason is the error message.
    """

    help = "Run one job once by hand, by name: " + ", ".join(KNOWN)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help=f"The job to run; one of: {', '.join(KNOWN)}")
        parser.add_argument("--category", help="The category's slug, for the jobs that work on one category.")

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        slug: str | None = options.get("category")
        if name in CATEGORY_JOBS:
            if not slug:
                raise CommandError(f"Job {name!r} works on one category: give --category SLUG.")
            if not Category.objects.filter(slug=slug).exists():
                raise CommandError(f"Unknown category {slug!r}.")
            result: Any = CATEGORY_JOBS[name](slug)
        elif name in JOBS:
            if slug:
                raise CommandError(f"Job {name!r} runs over every category; it takes no --category.")
            result = JOBS[name].func()
        else:
            raise CommandError(f"Unknown job {name!r}. Known jobs: {', '.join(KNOWN)}.")
        self.stdout.write(json.dumps(result, indent=2, sort_keys=True, default=str))
        if isinstance(result, dict) and result.get("ok") is False:
            if result.get("refused"):
                raise CommandError(f"Job {name!r} refused: {result['refused']}")
            raise CommandError(f"Job {name!r} ran and reported a problem (see its summary above).")
        self.stdout.write(self.style.SUCCESS(f"Job {name!r} done."))
