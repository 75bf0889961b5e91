"""The grants the cases layer declares, read in one place: who works a queue (`cases.work_queue`) and who sees a
case's input as submitted (`cases.view_pii`).

Both permissions belong to cases' own models, so they are read here rather than in governance: the ground layer
never names a permission of a layer above it. What governance must know from them (the categories a queue's
workers see, the cases whose audit events they see) cases registers from its AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from guardian.shortcuts import get_users_with_perms

from governance.permissions import object_ids_with_perms
from governance.pii import redact

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from cases.models import Queue

# Declared on cases.Case (DESIGN.md names it): see inputs as they were submitted; everyone else sees the redacted view.
VIEW_PII_PERM = "cases.view_pii"


def worked_queue_ids(user: User | AnonymousUser) -> set[int]:
    """Queues the user may work (`cases.work_queue`, per user or through a group)."""
    return object_ids_with_perms(user, "cases", "queue", ("work_queue",))


def users_who_work(queue: Queue) -> list[User]:
    """Active people granted `cases.work_queue` on the queue, directly or through a group: whom its notices reach."""
    users = get_users_with_perms(queue, only_with_perms_in=["work_queue"], with_group_users=True)
    return [u for u in users if isinstance(u, User) and u.is_active]


def workers_by_queue(queues: Iterable[Queue]) -> dict[Queue, list[User]]:
    """The people who work any of `queues`, each under the first of them (in the order given) that they work:
    whom a notice about all of those queues reaches once, with the link to a queue of theirs."""
    seen: set[int] = set()
    found: dict[Queue, list[User]] = {}
    for queue in queues:
        people = [user for user in users_who_work(queue) if user.pk not in seen]
        seen.update(user.pk for user in people)
        if people:
            found[queue] = people
    return found


def may_view_pii(user: User | AnonymousUser | None) -> bool:
    """Superusers and holders of `cases.view_pii` (through a role or by hand) see raw inputs; nobody else."""
    return bool(user is not None and user.is_authenticated and user.has_perm(VIEW_PII_PERM))


def shown_input(value: Any, *, pii_fields: Iterable[str] | None, user: User | AnonymousUser | None) -> Any:
    """A case input as this user may see it: raw with `view_pii`, otherwise redacted. No user: redacted.

    The redaction comes first: when it changes nothing (no PII field, nothing detected), raw and redacted are the
    same and the user's permissions need not be loaded at all (two queries saved on most intake responses)."""
    redacted = redact(value, pii_fields=pii_fields)
    if redacted == value:
        return value
    return value if may_view_pii(user) else redacted
