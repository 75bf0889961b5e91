"""Migrate the floor's database and print an API token of its one user (created once)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Migrate the floor's database and print the API token bench/intake.py sends."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        user, _ = User.objects.get_or_create(username="bench-integration", defaults={"is_staff": True})
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
