"""The shape of `GET /api/v1/metrics/{category}/` for the OpenAPI schema. The figures are computed by
`metrics.kpis.category_kpis`; these serializers document its keys (DESIGN.md, KPIs), they compute nothing."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class WindowSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(allow_null=True, help_text="1h, 24h, 7d, 30d or 90d; null for since/until.")
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


class RoutesSerializer(serializers.Serializer[Any]):
    auto = serializers.IntegerField()
    quick_review = serializers.IntegerField()
    full_review = serializers.IntegerField()
    shadow = serializers.IntegerField()


class SpreadSerializer(serializers.Serializer[Any]):
    median = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)


class IntervalSerializer(serializers.Serializer[Any]):
    n = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="95 % Wilson interval, low end.")
    high = serializers.FloatField(allow_null=True, help_text="95 % Wilson interval, high end.")


class QueueFiguresSerializer(serializers.Serializer[Any]):
    slug = serializers.CharField()
    kind = serializers.CharField()
    depth = serializers.IntegerField()
    oldest_age_seconds = serializers.IntegerField(allow_null=True)
    overdue = serializers.IntegerField()
    near_breach = serializers.IntegerField()


class SensitiveLabelSerializer(serializers.Serializer[Any]):
    n = serializers.IntegerField(help_text="Human verdicts on outputs the model gave this label.")
    false_positive_rate = serializers.FloatField(allow_null=True)
    false_negative_rate = serializers.FloatField(allow_null=True)


class FairnessValueSerializer(serializers.Serializer[Any]):
    value = serializers.CharField()
    n = serializers.IntegerField()
    approval_rate = serializers.FloatField(allow_null=True, help_text="The model's output acted as proposed.")


class FairnessSerializer(serializers.Serializer[Any]):
    values = FairnessValueSerializer(many=True)
    disparity_ratio = serializers.FloatField(
        allow_null=True, help_text="Lowest over highest approval rate among values with n >= 20."
    )
    flag = serializers.BooleanField(help_text="Under 0.8: the four-fifths rule.")


class ReviewerSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    decisions = serializers.IntegerField()
    per_hour = serializers.FloatField(allow_null=True, help_text="Decisions per hour of recorded review time.")
    median_seconds = serializers.FloatField(allow_null=True)
    approval_rate = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(
        allow_null=True, help_text="Cohen's kappa over the double reviews they were part of; null without any."
    )
    rubber_stamp = serializers.BooleanField()
    floor_seconds = serializers.IntegerField()


class KappaSerializer(serializers.Serializer[Any]):
    n = serializers.IntegerField(help_text="Double reviews whose second verdict is in.")
    kappa = serializers.FloatField(
        allow_null=True, help_text="Cohen's kappa; null with nothing to compare or when one label was all anyone gave."
    )
    weak = serializers.BooleanField(help_text='Below 0.61 ("substantial", Landis & Koch).')


class KappaPairSerializer(KappaSerializer):
    reviewers = serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2)


class KappaReviewerSerializer(KappaSerializer):
    username = serializers.CharField()


class AgreementSerializer(KappaSerializer):
    """Agreement in double reviews over the window: the category's, per reviewer pair and per reviewer."""

    pairs = KappaPairSerializer(many=True)
    reviewers = KappaReviewerSerializer(many=True)


class AdvisorRowSerializer(serializers.Serializer[Any]):
    threshold = serializers.FloatField()
    would_act_share = serializers.FloatField(allow_null=True)
    known = serializers.IntegerField(help_text="Cases above the threshold whose right answer is known.")
    enough_data = serializers.BooleanField(help_text="At least 30 known outcomes: otherwise no error rate.")
    error_rate = serializers.FloatField(allow_null=True)
    error_rate_upper = serializers.FloatField(allow_null=True, help_text="95 % Wilson upper bound.")
    review_hours_per_day = serializers.FloatField()


class CategoryMetricsSerializer(serializers.Serializer[Any]):
    category = serializers.CharField()
    window = WindowSerializer()
    volume = serializers.IntegerField()
    routes = RoutesSerializer()
    auto_rate = serializers.FloatField(allow_null=True)
    override_rate = serializers.FloatField(allow_null=True)
    escalation_rate = serializers.FloatField(allow_null=True)
    resolution_minutes = SpreadSerializer()
    throughput_per_hour = serializers.FloatField(allow_null=True)
    review_seconds = SpreadSerializer()
    time_saved_minutes = serializers.FloatField()
    audited_accuracy = IntervalSerializer()
    sla_breach_rate = serializers.FloatField(allow_null=True)
    queues = QueueFiguresSerializer(many=True)
    confidence_histogram = serializers.ListField(child=serializers.IntegerField(), min_length=10, max_length=10)
    drift_psi = serializers.FloatField(allow_null=True)
    sensitive_labels = serializers.DictField(child=SensitiveLabelSerializer())
    fairness = serializers.DictField(child=FairnessSerializer())
    reviewers = ReviewerSerializer(many=True)
    shadow_agreement = IntervalSerializer()
    agreement = AgreementSerializer()
    threshold_advisor = AdvisorRowSerializer(many=True)
