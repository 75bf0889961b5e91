"""Decisions, read-only (append-only in the database; made through the review services)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.db.models import BooleanField, Count, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from cases.selectors import BLIND_NOTE, is_blind
from governance.admin_mixins import (
    HitlModelAdmin,
    RefreshWhileRunningMixin,
    VisibleCategoryFilter,
    VisibleToAdminMixin,
    acting_user,
    confirm_with_reason,
)
from governance.models import Category
from governance.permissions import is_data_curator
from reviews import services
from reviews.agreement import WEAK_KAPPA, agreement_by_category
from reviews.links import review_url
from reviews.models import Decision, DoubleReview, Label, LabelExport, ReviewerCertification
from reviews.selectors import certifiable_reviewers

if TYPE_CHECKING:
    from django.utils.safestring import SafeString


class DecisionCategoryFilter(VisibleCategoryFilter):
    lookup = "case__category_id"


def _output_html(decision: Decision, output: Any) -> SafeString:
    if is_blind(decision.case):  # an escalated shadow case is still decided blind
        return format_html('<p class="help">{}</p>', BLIND_NOTE)
    return format_html("<pre>{}</pre>", json.dumps(output, indent=2, ensure_ascii=False, default=str))


@admin.register(Decision)
class DecisionAdmin(VisibleToAdminMixin, admin.ModelAdmin[Decision]):
    """Who decided what on which case; visible where the case is."""

    grants_open_admin = False
    list_display = (
        "id",
        "created_at",
        "case_link",
        "category",
        "action",
        "reason_code",
        "actor",
        "seconds_spent",
        "model_version",
        "policy_version",
        "batch_id",
    )
    list_filter = (DecisionCategoryFilter, "action", "reason_code")
    list_select_related = ("case__category", "actor")
    search_fields = ("case__external_id__exact",)
    search_help_text = "The exact external id of a case."
    show_full_result_count = False
    fields = (
        "case",
        "actor",
        "action",
        "output_before_shown",
        "output_after_shown",
        "reason_code",
        "notes",
        "seconds_spent",
        "batch_id",
        "model_version",
        "policy_version",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Decision | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Decision | None = None) -> bool:
        return False

    @admin.display(description="output before")
    def output_before_shown(self, obj: Decision) -> SafeString:
        return _output_html(obj, obj.output_before)

    @admin.display(description="output after")
    def output_after_shown(self, obj: Decision) -> SafeString:
        return _output_html(obj, obj.output_after)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Decision]:
        # Whether each decision is the user's own: theirs open on the workplace's review page wherever the case
        # went since (read-only outside their queues); the case admin shows only the cases they may see.
        mine = ExpressionWrapper(Q(actor_id=request.user.pk), output_field=BooleanField())
        decisions: QuerySet[Decision] = super().get_queryset(request).annotate(mine=mine)
        return decisions

    @admin.display(description="case", ordering="case_id")
    def case_link(self, obj: Decision) -> SafeString:
        if getattr(obj, "mine", False):
            return format_html('<a href="{}">{}</a>', review_url(obj.case), obj.case.external_id)
        url = reverse("admin:cases_case_change", args=[obj.case_id])
        return format_html('<a href="{}">{}</a>', url, obj.case.external_id)

    @admin.display(description="category", ordering="case__category__slug")
    def category(self, obj: Decision) -> str:
        return obj.case.category.slug


class CuratorsOnly(VisibleToAdminMixin):
    """The labelled data is the data curators' (and superusers'): only they open these admins."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The role is the grant here (no model permission needed); rows stay those of the categories they see.
        if not is_data_curator(request.user):
            return False
        return obj is None or self.is_visible(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_data_curator(request.user)


@admin.register(Label)
class LabelAdmin(CuratorsOnly, admin.ModelAdmin[Label]):
    """Every label, read-only: made by the review services with each verdict, never by hand."""

    list_display = ("id", "created_at", "category", "case", "label", "model_label", "source", "reviewer",
                    "certified", "passed_gate", "superseded")  # fmt: skip
    list_filter = (VisibleCategoryFilter, "source", "passed_gate", "certified", "superseded")
    list_select_related = ("category", "reviewer", "case")
    search_fields = ("label", "case__external_id")
    raw_id_fields = ("case", "decision", "reviewer")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Label | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Label | None = None) -> bool:
        return False


@admin.register(DoubleReview)
class DoubleReviewAdmin(CuratorsOnly, admin.ModelAdmin[DoubleReview]):
    """Double reviews, read-only (the review services make and work them), with the agreement they add up to:
    Cohen's kappa per category, per reviewer pair and per reviewer, each with its n, weak ones flagged; the
    figures a data curator certifies and revokes on."""

    list_display = ("id", "created_at", "category", "case", "status", "first_reviewer", "first_said",
                    "second_reviewer", "second_said", "agreed", "adjudicator")  # fmt: skip
    list_filter = (VisibleCategoryFilter, "status", "agreed")
    list_select_related = ("category", "case", "first_reviewer", "second_reviewer", "adjudicator", "first_label",
                           "second_label")  # fmt: skip
    raw_id_fields = ("case", "first_decision", "first_label", "second_label", "adjudicated_label")
    show_full_result_count = False
    change_list_template = "admin/reviews/doublereview/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DoubleReview | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: DoubleReview | None = None) -> bool:
        return False

    @admin.display(description="first said")
    def first_said(self, obj: DoubleReview) -> str:
        return obj.first_label.label

    @admin.display(description="second said")
    def second_said(self, obj: DoubleReview) -> str:
        return obj.second_label.label if obj.second_label else "—"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The agreement of every category the curator sees, from one grouped query (a row per combination of
        # reviewers and labels): the panel above the list.
        figures = agreement_by_category(DoubleReview.objects.visible_to(request.user).pair_counts())
        slugs = dict(Category.objects.filter(pk__in=figures).values_list("pk", "slug"))
        agreement = sorted(((slugs[pk], figure) for pk, figure in figures.items()), key=lambda item: item[0])
        context = {"agreement": agreement, "weak_kappa": WEAK_KAPPA}
        return super().changelist_view(request, {**(extra_context or {}), **context})


class CertifyForm(forms.ModelForm[ReviewerCertification]):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), help_text="Why: kept in the history."
    )

    class Meta:
        model = ReviewerCertification
        fields = ("reviewer", "category", "reason")


@admin.register(ReviewerCertification)
class ReviewerCertificationAdmin(CuratorsOnly, HitlModelAdmin[ReviewerCertification]):
    """Data curators certify reviewers per category (their labels pass the gate from then on) and revoke them,
    always with a reason; the history says who did what and why. The agreement figures to decide on are each
    reviewer's row in the category's KPIs (approval rate, median time, kappa) and the double reviews' page
    (kappa per category, reviewer pair and reviewer, with n)."""

    form = CertifyForm
    list_display = ("reviewer", "category", "active", "certified_at", "revoked_at", "labels_made", "approval_rate")
    list_filter = (VisibleCategoryFilter, "active")
    list_select_related = ("reviewer", "category")
    actions = ("revoke_selected",)
    read_only_change_form = True

    def get_fields(self, request: HttpRequest, obj: ReviewerCertification | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("reviewer", "category", "reason")
        return ("reviewer", "category", "active", "certified_at", "revoked_at", "reason")

    def get_readonly_fields(self, request: HttpRequest, obj: ReviewerCertification | None = None) -> tuple[str, ...]:
        return () if obj is None else self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_data_curator(request.user)

    def has_change_permission(self, request: HttpRequest, obj: ReviewerCertification | None = None) -> bool:
        return is_data_curator(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: ReviewerCertification | None = None) -> bool:
        return False

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "category":
            kwargs["queryset"] = Category.objects.visible_to(request.user)
        if db_field.name == "reviewer":
            # A list of the people who decide, not a raw id: the user lookup popup is closed to data curators (they
            # hold no auth.view_user), so a raw id would ask them for a number they cannot look up.
            kwargs["queryset"] = certifiable_reviewers()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(
        self, request: HttpRequest, obj: ReviewerCertification, form: forms.ModelForm[Any], change: bool
    ) -> None:
        certified = services.certify(
            curator=acting_user(request),
            reviewer=obj.reviewer,
            category=obj.category,
            reason=form.cleaned_data["reason"],
        )
        obj.pk = certified.pk
        obj._state.adding = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReviewerCertification]:
        # The reviewer's labels in this category and how often they approved: evidence for the curator's decision.
        decided = Label.objects.filter(reviewer=OuterRef("reviewer"), category=OuterRef("category"))
        counts = decided.order_by().values("reviewer").annotate(n=Count("id")).values("n")
        approved = decided.filter(source="approve").order_by().values("reviewer").annotate(n=Count("id")).values("n")
        queryset: QuerySet[ReviewerCertification] = super().get_queryset(request)
        return queryset.annotate(
            label_count=Coalesce(Subquery(counts), 0), approve_count=Coalesce(Subquery(approved), 0)
        )

    @admin.display(description="labels", ordering="label_count")
    def labels_made(self, obj: Any) -> int:
        return int(obj.label_count)

    @admin.display(description="approved")
    def approval_rate(self, obj: Any) -> str:
        return f"{obj.approve_count / obj.label_count:.0%}" if obj.label_count else "-"

    @admin.action(description="Revoke the selected certifications (asks why)", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ReviewerCertification]) -> HttpResponse | None:
        curator = acting_user(request)

        def apply(certification: ReviewerCertification, data: dict[str, Any]) -> object:
            return services.revoke(
                curator=curator, reviewer=certification.reviewer, category=certification.category, reason=data["reason"]
            )

        return confirm_with_reason(
            self,
            request,
            list(queryset.filter(active=True)),
            title="Revoke certifications",
            submit_label="Revoked",
            apply=apply,
            action="revoke_selected",
        )


class ExportForm(forms.ModelForm[LabelExport]):
    """The export's filters, as the API takes them."""

    category = forms.ModelChoiceField(queryset=Category.objects.none(), required=False, empty_label="Every category")
    format = forms.ChoiceField(choices=[("jsonl", "JSON lines"), ("csv", "CSV")])
    passed_gate = forms.BooleanField(required=False, label="Only labels past the quality gate")
    since = forms.DateTimeField(required=False, help_text="Labels made at or after (your time zone).")
    until = forms.DateTimeField(required=False, help_text="Labels made before.")

    class Meta:
        model = LabelExport
        fields: list[str] = []

    def params(self) -> dict[str, Any]:
        data = self.cleaned_data
        params: dict[str, Any] = {"format": data["format"]}
        if data["category"] is not None:
            params["category"] = data["category"].slug
        if data["passed_gate"]:
            params["passed_gate"] = "true"
        for name in ("since", "until"):
            if data[name] is not None:
                params[name] = data[name].isoformat()
        return params


@admin.register(LabelExport)
class LabelExportAdmin(CuratorsOnly, RefreshWhileRunningMixin, admin.ModelAdmin[LabelExport]):
    """Label exports run as jobs: start one here, watch its progress in the list, download it when done."""

    form = ExportForm
    list_display = ("id", "created_at", "requested_by", "what", "status", "progress_bar", "download")
    list_select_related = ("requested_by",)
    running_filter = {"status__in": [LabelExport.Status.QUEUED, LabelExport.Status.RUNNING]}

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        category = form.base_fields["category"]
        assert isinstance(category, forms.ModelChoiceField)
        category.queryset = Category.objects.visible_to(request.user)
        return form

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_data_curator(request.user)

    def has_change_permission(self, request: HttpRequest, obj: LabelExport | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LabelExport | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: LabelExport, form: Any, change: bool) -> None:
        created = services.request_export(user=acting_user(request), params=form.params())
        obj.pk = created.pk
        obj._state.adding = False

    def get_urls(self) -> list[URLPattern]:
        download = path(
            "<int:pk>/download/", self.admin_site.admin_view(self.download_view), name="reviews_labelexport_download"
        )
        return [download, *super().get_urls()]

    def download_view(self, request: HttpRequest, pk: int) -> FileResponse:
        item = self.get_queryset(request).filter(pk=pk, status=LabelExport.Status.DONE).first()
        if item is None or not is_data_curator(request.user):
            raise Http404("No finished export of yours matches.")
        return FileResponse(services.export_path(item).open("rb"), as_attachment=True, filename=item.file_name)

    @admin.display(description="labels")
    def what(self, obj: LabelExport) -> str:
        params = obj.params
        parts = [params.get("category") or "every category", params.get("format", "jsonl")]
        if params.get("passed_gate") == "true":
            parts.append("past the gate")
        return ", ".join(parts)

    @admin.display(description="progress")
    def progress_bar(self, obj: LabelExport) -> SafeString:
        total = "?" if obj.total is None else f"{obj.total:,}"
        return format_html(
            '<progress value="{}" max="1" style="width:10em"></progress> {} of {}',
            f"{obj.progress:.3f}",
            f"{obj.written:,}",
            total,
        )

    @admin.display(description="file")
    def download(self, obj: LabelExport) -> SafeString | str:
        if obj.status == LabelExport.Status.DONE:
            return format_html(
                '<a href="{}">Download</a>', reverse("admin:reviews_labelexport_download", args=[obj.pk])
            )
        return obj.error[:120] if obj.status == LabelExport.Status.FAILED else "—"
