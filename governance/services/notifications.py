"""Telling people: an in-admin notice per person and an e-mail (console by default, SMTP from EMAIL_URL).

Recipients are the members of a role, or whoever the caller names (the people who work a queue are found by the
layer that owns queues and their grant). Mail failures are logged, never raised: a notice must not undo the work
that caused it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.mail import send_mass_mail

from governance.models import Notification

logger = logging.getLogger("hitl.notifications")


def users_in_role(role: str) -> list[User]:
    group = Group.objects.filter(name=role).first()
    return list(group.user_set.filter(is_active=True)) if group else []


def notify(
    users: Iterable[User],
    *,
    subject: str,
    body: str = "",
    link: str = "",
    kind: str = "",
    category_slug: str = "",
) -> list[Notification]:
    """One notice per person (each once, however often they are listed), and the same by e-mail."""
    recipients = {user.pk: user for user in users}.values()
    return notify_each(
        [
            Notification(user=user, subject=subject, body=body, link=link, kind=kind, category_slug=category_slug)
            for user in recipients
        ]
    )


def notify_each(notices: list[Notification]) -> list[Notification]:
    """Store notices that differ per person (a sweep's digest, say) in one insert, and mail each to its person."""
    if not notices:
        return []
    created = Notification.objects.bulk_create(notices)
    mails: list[tuple[str, str, str, list[str]]] = [
        (notice.subject, f"{notice.body}\n\n{notice.link}".strip(), settings.DEFAULT_FROM_EMAIL, [notice.user.email])
        for notice in created
        if notice.user.email
    ]
    if mails:
        try:
            send_mass_mail(tuple(mails), fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any mail transport error; the notice rows stand
            logger.warning("Could not send %d notification e-mails (%s): %s", len(mails), mails[0][0], exc)
    return created


def unread_count(user: Any) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count() if user.is_authenticated else 0
