"""Categories and their versioned policies: what is automated, and by which routing rules."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from governance.choices import Consequence, Pattern, Stage
from governance.permissions import has_global_category_view, visible_category_ids

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


_M = TypeVar("_M", bound=models.Model)

# A cadence longer than a year is no cadence: say 0 (off) instead.
MAX_RETRAIN_EVERY_DAYS = 366
# The most cases one batch approval may hold, whatever a policy says: past two pages of a work list (50 rows each)
# nobody has read what they approve, which is the review theatre batch approval must not become.
MAX_BATCH_MAX = 100


def default_audit_multipliers() -> dict[str, float]:
    """Strata that deserve more eyes (DESIGN.md, Routing): each multiplies the audit rate."""
    return {"near_threshold": 3.0, "top_decile_value": 2.0, "new_segment": 2.0, "canary": 3.0}


class CategoryQuerySet(models.QuerySet["Category"]):
    def visible_to(self, user: User | AnonymousUser) -> CategoryQuerySet:
        """Categories the user may see: by a grant on the category, by the grants of the layers above (their
        registered providers: a queue's workers see its category), or by a global grant."""
        if not user.is_authenticated:
            return self.none()
        if has_global_category_view(user):
            return self.all()
        return self.filter(pk__in=visible_category_ids(user))


class InCategoryQuerySet(models.QuerySet[_M]):
    """Rows that belong to one category (a policy, an incident, a model version, an alert rule...): visible to
    whoever sees their category. The one `visible_to` of every such model, so no admin or view re-applies it."""

    def visible_to(self, user: User | AnonymousUser) -> Self:
        return self.filter(category__in=Category.objects.visible_to(user))


class Category(models.Model):
    """One kind of automated decision (e.g. refund approvals) with its review pattern, stage and pause state."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    pattern = models.CharField(max_length=16, choices=Pattern.choices, default=Pattern.EXCEPTION)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.LIVE)
    consequence = models.CharField(max_length=16, choices=Consequence.choices, default=Consequence.MEDIUM)
    paused = models.BooleanField(default=False, help_text="Automation off: every case goes to a human first.")
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paused_reason = models.TextField(blank=True)
    resumed_at = models.DateTimeField(
        null=True, blank=True, help_text="The pause trigger never looks back past the last resume."
    )
    # The incident a pause opened (the pause rule's or an alert's), so the person who resumes writes it there: its
    # timeline says when automation came back on and why. Empty for a pause by hand, and once resumed.
    pause_incident = models.ForeignKey(
        "governance.Incident",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The incident the current pause opened: the resume is written on it.",
    )
    pii_fields = models.JSONField(
        default=list, blank=True, help_text="Input field names that always hold personal data, e.g. ['email']."
    )
    retention_days = models.PositiveIntegerField(default=365)
    baseline_minutes_per_case = models.DecimalField(
        max_digits=7, decimal_places=2, default=Decimal("5.00"), validators=[MinValueValidator(Decimal("0"))]
    )
    # On Category rather than Policy: the cadence is the model stewards' (who own retraining), not the product
    # owner's routing rules, and changing it must not make a new policy version.
    # db_default too: rows written by code that predates the column (older migrations' states) still get one.
    retrain_every_days = models.PositiveIntegerField(
        default=30,
        db_default=30,
        validators=[MaxValueValidator(MAX_RETRAIN_EVERY_DAYS)],
        help_text="Retrain the built-in model this often (days, once it has been trained); 0 turns the cadence off.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()
    objects = CategoryQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "categories"
        permissions = [("submit_case", "Can submit cases to this category")]
        constraints = [
            models.CheckConstraint(
                condition=Q(pattern__in=Pattern.values), name="%(app_label)s_%(class)s_pattern_valid"
            ),
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="%(app_label)s_%(class)s_stage_valid"),
            models.CheckConstraint(
                condition=Q(retrain_every_days__lte=MAX_RETRAIN_EVERY_DAYS),
                name="%(app_label)s_%(class)s_retrain_cadence_range",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class Policy(models.Model):
    """A category's routing rules. Every change increments `version`; simple-history keeps each one with a reason."""

    category = models.OneToOneField(Category, on_delete=models.CASCADE, related_name="policy")
    version = models.PositiveIntegerField(default=1, editable=False)
    auto_threshold = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Confidence at or above which an output may act on its own.",
    )
    review_threshold = models.FloatField(
        default=0.70,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Below this confidence a case gets a full review.",
    )
    auto_share = models.FloatField(
        default=100.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="The ramp, in percent: the share of auto-eligible cases that may act; the rest get a quick review.",
    )
    high_value_amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="A case worth this much or more always gets a full review. Empty: no limit.",
    )
    sensitive_labels = models.JSONField(default=list, blank=True, help_text="Predicted labels that force full review.")
    sensitive_rules = models.JSONField(default=list, blank=True, help_text="Fired rules that force full review.")
    audit_rate = models.FloatField(
        default=0.02,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction (0-1) of auto-approved cases drawn for audit, before stratum multipliers.",
    )
    audit_multipliers = models.JSONField(default=default_audit_multipliers, blank=True)
    double_review_rate = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction (0-1) of human-decided cases that get a second, blind review by another person.",
    )
    pause_rejection_rate = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Fraction (0-1) of reviewed cases not approved as proposed that pauses the category.",
    )
    pause_window_hours = models.PositiveIntegerField(default=48, validators=[MinValueValidator(1)])
    pause_min_reviews = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    batch_max = models.PositiveIntegerField(
        default=25,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_BATCH_MAX)],
        help_text=f"The most cases one batch approval may hold (1-{MAX_BATCH_MAX}); a larger selection is refused.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()
    objects = InCategoryQuerySet["Policy"].as_manager()

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(review_threshold__gte=0)
                & Q(review_threshold__lt=models.F("auto_threshold"))
                & Q(auto_threshold__lte=1),
                name="%(app_label)s_%(class)s_thresholds_ordered",
            ),
            models.CheckConstraint(
                condition=Q(auto_share__gte=0) & Q(auto_share__lte=100), name="%(app_label)s_%(class)s_auto_share_pct"
            ),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0) & Q(audit_rate__lte=1), name="%(app_label)s_%(class)s_audit_rate_frac"
            ),
            models.CheckConstraint(
                condition=Q(double_review_rate__gte=0) & Q(double_review_rate__lte=1),
                name="%(app_label)s_%(class)s_double_review_rate_frac",
            ),
            models.CheckConstraint(
                condition=Q(pause_rejection_rate__gte=0) & Q(pause_rejection_rate__lte=1),
                name="%(app_label)s_%(class)s_pause_rate_frac",
            ),
            models.CheckConstraint(
                condition=Q(batch_max__gte=1) & Q(batch_max__lte=MAX_BATCH_MAX),
                name="%(app_label)s_%(class)s_batch_max_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category.slug} policy v{self.version}"

    def clean(self) -> None:
        thresholds_set = self.review_threshold is not None and self.auto_threshold is not None
        if thresholds_set and not 0 <= self.review_threshold < self.auto_threshold <= 1:
            raise ValidationError({"review_threshold": "Must hold 0 <= review_threshold < auto_threshold <= 1."})
        if not isinstance(self.sensitive_labels, list) or not all(isinstance(x, str) for x in self.sensitive_labels):
            raise ValidationError({"sensitive_labels": "Must be a list of label strings."})
        if not isinstance(self.sensitive_rules, list) or not all(isinstance(x, str) for x in self.sensitive_rules):
            raise ValidationError({"sensitive_rules": "Must be a list of rule names."})
        validate_audit_multipliers(self.audit_multipliers)


def validate_audit_multipliers(value: Any) -> None:
    known = set(default_audit_multipliers())
    if not isinstance(value, dict):
        raise ValidationError({"audit_multipliers": "Must be an object of stratum -> multiplier."})
    unknown = set(value) - known
    if unknown:
        raise ValidationError(
            {"audit_multipliers": f"Unknown strata {sorted(unknown)}; known strata are {sorted(known)}."}
        )
    for key, factor in value.items():
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 0:
            raise ValidationError({"audit_multipliers": f"The multiplier for {key!r} must be a number >= 0."})
