"""Journeys: sequences people enter one by one, by API or by list, always on.

A journey is a campaign of kind `journey` and a journey's enrollment is an
enrollment of that campaign: both are proxy models here, so a journey's
steps go out through the one send pipeline (dispatch, claims, every check,
limit, header, tracking, reply detection) and move through the one state
machine (`enrollments.services`), which also records the
`journey_enrollment.*` events.

- A journey's state is its campaign's status: draft = pending, on =
  active, off = paused (its sends held, released with their gaps kept when
  it is turned on again). Journeys are never completed.
- A journey's enrollment is `completed` when its last step went out
  (`completed_at`), `exited` when it stopped before that (bounce, reply,
  unsubscribe), `active` otherwise. A contact may enter again once its last
  enrollment is not active and did not complete within
  `RECENTLY_COMPLETED` (a new enrollment, the next `round`).
"""

from __future__ import annotations

import datetime

from django.db import models
from django.db.models import Case, Q, Value, When

from campaigns.models import Campaign
from enrollments.models import Enrollment
from enrollments.selectors import ACTIVE
from enrollments.services import journey_exit_reason, journey_exited_at

RECENTLY_COMPLETED = datetime.timedelta(hours=12)

STATE_FOR_STATUS = {
    Campaign.Status.PENDING: "draft",
    Campaign.Status.ACTIVE: "on",
    Campaign.Status.PAUSED: "off",
    Campaign.Status.COMPLETED: "off",  # never reached: journeys are not completed
}


class JourneyManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(kind=Campaign.Kind.JOURNEY)


class Journey(Campaign):
    class State(models.TextChoices):
        DRAFT = "draft"
        ON = "on"
        OFF = "off"

    objects = JourneyManager()

    class Meta:
        proxy = True

    @property
    def state(self) -> str:
        return STATE_FOR_STATUS[self.status]


# An enrollment of a journey is active while it is neither completed nor stopped (the rule of every
# enrollment: `enrollments.selectors.ACTIVE`). The enroll's SQL (`journeys.services`) asks the same of the
# latest enrollment of each contact, as `ACTIVE_SQL`.
ACTIVE_SQL = "(e.completed_at IS NULL AND e.unsubscribed_at IS NULL AND e.status NOT IN ('bounced', 'replied'))"
COMPLETED = Q(completed_at__isnull=False)


class JourneyEnrollmentQuerySet(models.QuerySet):
    def with_journey_status(self):
        return self.annotate(
            journey_status=Case(
                When(COMPLETED, then=Value("completed")),
                When(ACTIVE, then=Value("active")),
                default=Value("exited"),
                output_field=models.CharField(),
            )
        )


class JourneyEnrollmentManager(models.Manager.from_queryset(JourneyEnrollmentQuerySet)):
    def get_queryset(self):
        return super().get_queryset().filter(campaign__kind=Campaign.Kind.JOURNEY)


class JourneyEnrollment(Enrollment):
    class JourneyStatus(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"
        EXITED = "exited"

    objects = JourneyEnrollmentManager()

    class Meta:
        proxy = True

    @property
    def journey_id(self):
        return self.campaign_id

    @property
    def enrolled_at(self) -> datetime.datetime:
        return self.created_at

    @property
    def exit_reason(self) -> str | None:
        return journey_exit_reason(self)

    @property
    def exited_at(self) -> datetime.datetime | None:
        return journey_exited_at(self)
