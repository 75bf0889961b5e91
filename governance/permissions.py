"""Who may see what: the object grants (django-guardian) that narrow a role to its categories and queues.

Roles (groups) give the kind of work; object permissions say where. Visibility is computed here once and used
by every queryset's `visible_to(user)`, so the admin, the API and exports draw the same boundary.

Grants on the objects of higher layers widen it too (whoever works a queue sees its category), but governance
never names those layers: each registers what it adds (`register_visible_category_ids`,
`register_visible_case_ids`) from its AppConfig.ready(), as reviews registers its audit binding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import BooleanField, CharField, Exists, ExpressionWrapper, Model, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast
from guardian.models import GroupObjectPermission, UserObjectPermission

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from governance.models import Category

    AnyUser = User | AnonymousUser

REVIEWER = "Reviewer"
ESCALATION_MANAGER = "Escalation Manager"
PRODUCT_OWNER = "Product Owner"
MODEL_STEWARD = "Model Steward"
DATA_CURATOR = "Data Curator"
ROLE_NAMES = (REVIEWER, ESCALATION_MANAGER, PRODUCT_OWNER, MODEL_STEWARD, DATA_CURATOR)

# Object permissions on a Category that open its cases (and the category itself) to a user.
CATEGORY_ACCESS_PERMS = ("view_category", "change_category", "submit_case")
# The global permission that opens every category (model stewards and data curators work across categories).
GLOBAL_CATEGORY_VIEW = "governance.view_category"
# May edit a category's policy, pause and resume it, and manage what hangs off it (webhooks, alert rules).
CHANGE_CATEGORY = "governance.change_category"


def object_ids_with_perms(user: AnyUser, app_label: str, model: str, codenames: tuple[str, ...]) -> set[int]:
    """Ids of the objects on which the user holds any of `codenames`, granted to them or to one of their groups."""
    if not user.is_authenticated:
        return set()
    # Cached on the user object, which lives for one request: a page that narrows several querysets reads
    # the grants once. Code that grants and then checks within one user object should use a fresh object.
    cache: dict[tuple[str, str, tuple[str, ...]], set[int]] = user.__dict__.setdefault("_hitl_object_ids", {})
    key = (app_label, model, codenames)
    if key not in cache:
        cache[key] = _object_ids_with_perms(user, app_label, model, codenames)
    return cache[key]


def _object_ids_with_perms(user: User, app_label: str, model: str, codenames: tuple[str, ...]) -> set[int]:
    content_type = ContentType.objects.get_by_natural_key(app_label, model)
    permission_ids = Permission.objects.filter(content_type=content_type, codename__in=codenames).values("pk")
    grants = Q(content_type=content_type, permission__in=permission_ids)
    user_pks = UserObjectPermission.objects.filter(grants, user=user).values_list("object_pk", flat=True)
    group_pks = GroupObjectPermission.objects.filter(grants, group__user=user).values_list("object_pk", flat=True)
    return {int(pk) for pk in user_pks.union(group_pks)}


def granted_attr(perm: str) -> str:
    """The attribute `with_grant` annotates for `perm` (`governance.submit_case` -> `granted_submit_case`)."""
    return "granted_" + perm.split(".", 1)[1]


def with_grant(queryset: QuerySet[Any], user: AnyUser, perm: str) -> QuerySet[Any]:
    """`queryset` with each row's object grant of `perm` to the user (or a group of theirs) read alongside, as the
    boolean `granted_attr(perm)` that `has_perm_on` then trusts: a request that reads a category and checks its
    grant makes one round trip, not two (intake)."""
    annotated: QuerySet[Any]
    if not user.is_authenticated:
        annotated = queryset.annotate(**{granted_attr(perm): Value(False, output_field=BooleanField())})
        return annotated
    codename = perm.split(".", 1)[1]
    content_type = ContentType.objects.get_for_model(queryset.model)
    grants = Q(
        content_type=content_type,
        permission__content_type=content_type,
        permission__codename=codename,
        # guardian keeps the object's key as text.
        object_pk=Cast(OuterRef("pk"), output_field=CharField()),
    )
    granted = Q(Exists(UserObjectPermission.objects.filter(grants, user=user))) | Q(
        Exists(GroupObjectPermission.objects.filter(grants, group__user=user))
    )
    annotated = queryset.annotate(**{granted_attr(perm): ExpressionWrapper(granted, output_field=BooleanField())})
    return annotated


def has_perm_on(user: AnyUser, perm: str, obj: Model) -> bool:
    """A global grant of `perm` or an object grant on `obj`, to the user or a group of theirs (guardian's tables,
    read once per request, or with `obj` itself by `with_grant`); superusers have every permission."""
    if user.is_superuser:
        return True
    app_label, codename = perm.split(".", 1)
    granted = getattr(obj, granted_attr(perm), None)
    if granted is None:
        granted = obj.pk in object_ids_with_perms(user, app_label, obj._meta.model_name or "", (codename,))
    return bool(granted) or user.has_perm(perm)  # else a role's model permission (Django caches these on the user)


def has_global_category_view(user: AnyUser) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.has_perm(GLOBAL_CATEGORY_VIEW)))


def full_access_category_ids(user: AnyUser) -> set[int]:
    """Categories whose every case the user may see (view, change or submit grant on the category)."""
    return object_ids_with_perms(user, "governance", "category", CATEGORY_ACCESS_PERMS)


class VisibleQuerySet(Protocol):
    """A queryset that knows who may see its rows: every visible model's (`Case.objects.visible_to(user)`).

    For the shared admin and API bases, which hold a queryset of whatever model they serve."""

    def visible_to(self, user: AnyUser) -> QuerySet[Any]: ...


# --- Visibility that the layers above add (registered from their AppConfig.ready()) ---

CategoryIdsProvider = Callable[["AnyUser"], Iterable[int]]
CaseIdsProvider = Callable[["AnyUser"], "QuerySet[Any]"]

_VISIBLE_CATEGORY_IDS: dict[str, CategoryIdsProvider] = {}
_VISIBLE_CASE_IDS: dict[str, CaseIdsProvider] = {}


def register_visible_category_ids(name: str, provider: CategoryIdsProvider) -> None:
    """Add the categories a user sees through grants of a higher layer (cases: the categories of the queues they
    work). Called from that app's `ready()`; registering a name again replaces it."""
    _VISIBLE_CATEGORY_IDS[name] = provider


def register_visible_case_ids(name: str, provider: CaseIdsProvider) -> None:
    """Say which cases a user may see, as a queryset of their pks (cases registers `Case.objects.visible_to`), so
    the audit events of those cases are visible too. Until one is registered, no case's events are."""
    _VISIBLE_CASE_IDS[name] = provider


def visible_category_ids(user: AnyUser) -> set[int]:
    """Categories the user may see: full-access grants plus whatever the layers above registered."""
    category_ids = set(full_access_category_ids(user))  # a copy: the grants are cached on the user
    for provider in _VISIBLE_CATEGORY_IDS.values():
        category_ids.update(provider(user))
    return category_ids


def visible_case_ids(user: AnyUser) -> list[QuerySet[Any]]:
    """The case pks the user may see, one queryset per registered provider (to use as `case_id__in=`)."""
    return [provider(user) for provider in _VISIBLE_CASE_IDS.values()]


def changeable_category_ids(user: AnyUser) -> set[int] | None:
    """The categories the user may change (`governance.change_category` granted on them, to the user or a group);
    None: every category (a global grant, or a superuser). For narrowing querysets; `can_change_category` asks
    the same question of one category."""
    if not user.is_authenticated:
        return set()
    if user.is_superuser or user.has_perm(CHANGE_CATEGORY):
        return None
    return object_ids_with_perms(user, "governance", "category", ("change_category",))


def can_change_category(user: AnyUser, category: Category | None = None) -> bool:
    """May the user change this category: edit its policy, pause and resume it, manage its webhooks and alert rules?

    The one statement of the rule, for the admin, the API and every app above alike: a superuser, a global
    `governance.change_category`, or that permission granted on this category. With no category: on at least one
    (whether a list or an "add" page should offer changing at all).
    """
    category_ids = changeable_category_ids(user)
    if category_ids is None:
        return True
    return bool(category_ids) if category is None else category.pk in category_ids


def is_data_curator(user: AnyUser) -> bool:
    """Who owns the labelled data (DESIGN.md, roles): data curators and superusers. They run the retention purge
    by hand, certify reviewers and export labels."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser or user.groups.filter(name=DATA_CURATOR).exists())


def may_purge_data(user: AnyUser) -> bool:
    """Who may run the retention purge by hand: the data's owners."""
    return is_data_curator(user)


def _stewards(user: AnyUser, category: Category) -> bool:
    """Is the user a model steward of this category: may change model versions, and sees the category?"""
    if not user.is_authenticated or not user.is_active or not user.has_perm("governance.change_modelversion"):
        return False
    return has_global_category_view(user) or category.pk in visible_category_ids(user)


def can_retrain(user: AnyUser, category: Category) -> bool:
    """May the user start a training of the category's built-in model, or set its retraining cadence? Model
    stewards own retraining (DESIGN.md, roles), and whoever may change the category itself, as its other
    settings."""
    if not user.is_authenticated or not user.is_active:
        return False
    return can_change_category(user, category) or _stewards(user, category)


def can_pause_category(user: AnyUser, category: Category) -> bool:
    """May the user pause and resume automation of this category? Whoever may change it, and its model stewards
    (DESIGN.md, roles: stewards pause and resume the categories granted to them)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return can_change_category(user, category) or _stewards(user, category)
