"""`manage.py runjob NAME`: run one periodic job once, now, in this process (no worker or Redis needed)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hitl_project.cron import JOBS


class Command(BaseCommand):
    """Run a job of hitl_project.cron.JOBS by its name and print its summary.

    Exits non-zero when the name is unknown, when the job raises, or when its summary says `"ok": false`
    (e.g. verify_audit found a broken chain), so scripts can rely on the exit code.
    """

    help = "Run one periodic job once by hand, by name: " + ", ".join(sorted(JOBS))

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help=f"The job to run; one of: {', '.join(sorted(JOBS))}")

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        job = JOBS.get(name)
        if job is None:
            raise CommandError(f"Unknown job {name!r}. Known jobs: {', '.join(sorted(JOBS))}.")
        result = job.func()
        self.stdout.write(json.dumps(result, indent=2, sort_keys=True, default=str))
        if isinstance(result, dict) and result.get("ok") is False:
            raise CommandError(f"Job {name!r} ran and reported a problem (see its summary above).")
        self.stdout.write(self.style.SUCCESS(f"Job {name!r} done."))
