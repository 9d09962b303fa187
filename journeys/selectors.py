"""Reads for journeys and their enrollments, always scoped to one account."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from accounts.models import Account
from campaigns.models import Campaign, SmtpCredential

from .models import ACTIVE, COMPLETED, Journey, JourneyEnrollment

STATUS_FOR_STATE = {
    Journey.State.DRAFT: Campaign.Status.PENDING,
    Journey.State.ON: Campaign.Status.ACTIVE,
    Journey.State.OFF: Campaign.Status.PAUSED,
}


def journey_list(*, account: Account, state: str | None = None) -> QuerySet[Journey]:
    """The account's journeys; `state` (draft/on/off) narrows them."""
    journeys = Journey.objects.filter(account=account)
    if state is not None:
        journeys = journeys.filter(status=STATUS_FOR_STATE[state])
    return journeys


def journey_detail_list(*, account: Account) -> QuerySet[Journey]:
    """Journeys with what their show renders: steps and credentials, in two prefetch queries."""
    return journey_list(account=account).prefetch_related(
        "sequence_steps", Prefetch("smtp_credentials", queryset=SmtpCredential.objects.select_related("mailbox"))
    )


def journey_enrollment_counts(*, journey: Journey) -> dict[str, int]:
    """`{"active", "completed", "exited"}`: the journey's enrollments by journey status, in one query."""
    return JourneyEnrollment.objects.filter(campaign_id=journey.pk).aggregate(
        active=Count("pk", filter=ACTIVE),
        completed=Count("pk", filter=COMPLETED),
        exited=Count("pk", filter=~ACTIVE & ~COMPLETED),
    )


def journey_enrollment_list(*, journey: Journey, status: str | None = None) -> QuerySet[JourneyEnrollment]:
    """The journey's enrollments (every round) with their contact and `journey_status`; `status` narrows them."""
    enrollments = (
        JourneyEnrollment.objects.with_journey_status().filter(campaign_id=journey.pk).select_related("contact")
    )
    if status is not None:
        enrollments = enrollments.filter(journey_status=status)
    return enrollments
