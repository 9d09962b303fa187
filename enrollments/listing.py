"""Reads behind the enrollment audit lists: enrollments, replies, skips of one campaign."""

from __future__ import annotations

import django_filters
from django.db.models import DurationField, ExpressionWrapper, F, QuerySet

from campaigns.models import Campaign
from core.filters import ColumnIntegerFilter

from .models import Enrollment, EnrollmentSkip


class EnrollmentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Enrollment.Status.choices)
    batch_number = ColumnIntegerFilter()

    class Meta:
        model = Enrollment
        fields = ["status", "batch_number"]


class SkipFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=EnrollmentSkip.Kind.choices)

    class Meta:
        model = EnrollmentSkip
        fields = ["kind"]


def enrollment_list(*, campaign: Campaign) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(campaign=campaign)


def enrollment_reply_list(*, campaign: Campaign) -> QuerySet[Enrollment]:
    """Replied enrollments with `time_to_reply` (reply minus the step-1 send)."""
    return Enrollment.objects.filter(campaign=campaign, replied_at__isnull=False).annotate(
        time_to_reply=ExpressionWrapper(F("replied_at") - F("sent_at"), output_field=DurationField())
    )


def enrollment_skip_list(*, campaign: Campaign) -> QuerySet[EnrollmentSkip]:
    return EnrollmentSkip.objects.filter(campaign=campaign)
