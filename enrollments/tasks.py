"""Celery tasks of enrollments (thin: each calls one service)."""

from celery import shared_task

from campaigns.models import Campaign
from core.errors import ApplicationError
from mailing.dispatch import campaign_dispatch


@shared_task(name="enrollments.dispatch_enrollment_batch", ignore_result=True)
def dispatch_enrollment_batch_task(campaign_id: str, batch_number: int) -> int:
    """After a /v1 enroll into a dispatched campaign: schedule its batch of one (`enrollment_start`).

    A refusal (paused since, plan limit, the enrollment deleted or already
    scheduled, …) leaves the enrollment pending: the campaign's next dispatch
    takes its batch. A full day is no refusal (`roll_over`).
    """
    campaign = Campaign.objects.filter(pk=campaign_id).select_related("account").first()
    if campaign is None:
        return 0
    try:
        return campaign_dispatch(campaign=campaign, batch_number=batch_number, roll_over=True).scheduled
    except ApplicationError:
        return 0
