from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    """People at work: claims, decisions, escalations, audits of auto cases, labels."""

    name = "reviews"
    verbose_name = "Reviews"
