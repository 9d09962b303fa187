"""Operator actions on a campaign's schedule: pause, resume, completion, releasing unknown sends.

Pause only flips the campaign's status (and remembers when): the tick stops
claiming its rows and a worker that finds it paused puts a claimed row back,
so nothing is sent and nothing is lost. Resume moves the schedule:

- For each enrollment with a send that came due during the pause, its
  earliest such send is re-timed from now with fresh jitter (cumulative
  uniform gaps in `[min_wait_seconds, max_wait_seconds]`, in the order the
  sends were due), and every other not-yet-sent step of that enrollment moves
  by the same amount, keeping the gaps between steps.
- Every other scheduled send of the campaign (not yet due) moves by the time
  paused, so the sequence resumes where it stood.

Completion: an active campaign is `completed` when it has no send left in
`scheduled`, `queued`, `sending` or `unknown` and no pending enrollment
waiting for a dispatch; `campaign.completed` is recorded with its counts.
"""

from __future__ import annotations

import datetime
import logging
import random
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_status_change
from core.errors import ApplicationError
from enrollments.models import Enrollment
from webhooks import events
from webhooks.services import webhook_event_record

from .models import CampaignPause, ScheduledSend

logger = logging.getLogger(__name__)

Status = ScheduledSend.Status
LIVE = (Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.UNKNOWN)


def _unfinished(campaign_id) -> tuple[Any, Any]:
    """A campaign's rows with something left to do: to send, or sent with consequences to apply.

    Two lookups rather than one OR: each keeps its index (campaign and status; the small partial
    index of `outcome_pending` rows), where an OR would read every row of a large campaign.
    """
    return (
        ScheduledSend.objects.filter(campaign_id=campaign_id, status__in=LIVE),
        ScheduledSend.objects.filter(campaign_id=campaign_id, outcome_pending=True),
    )


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Active → paused. Raises 422 `campaign_not_active` from any other status."""
    now = timezone.now()
    with transaction.atomic():
        if not campaign_status_change(campaign_id=campaign.pk, to=Campaign.Status.PAUSED):
            raise ApplicationError("Only an active campaign can be paused.", code="campaign_not_active")
        CampaignPause.objects.create(campaign_id=campaign.pk, paused_at=now)
    campaign.refresh_from_db(fields=["status", "updated_at"])
    return campaign


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Paused → active, re-timing the schedule (module docstring). Raises 422 `campaign_not_paused`."""
    now = timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not campaign_status_change(
            campaign_id=locked.pk, to=Campaign.Status.ACTIVE, sources=(Campaign.Status.PAUSED,)
        ):
            raise ApplicationError("Only a paused campaign can be resumed.", code="campaign_not_paused")
        pause = CampaignPause.objects.filter(campaign=locked, resumed_at__isnull=True).first()
        paused_at = pause.paused_at if pause else now
        if pause:
            pause.resumed_at = now
            pause.save(update_fields=["resumed_at"])
        _reschedule_after_pause(locked, paused_at=paused_at, now=now)
    campaign.refresh_from_db(fields=["status", "updated_at"])
    return campaign


def _reschedule_after_pause(campaign: Campaign, *, paused_at: datetime.datetime, now: datetime.datetime) -> None:
    scheduled = ScheduledSend.objects.filter(campaign=campaign, status=Status.SCHEDULED)
    due = list(scheduled.filter(send_at__lte=now).order_by("send_at", "id").values_list("enrollment_id", "send_at"))
    first_due: dict[Any, datetime.datetime] = {}
    for enrollment_id, send_at in due:
        first_due.setdefault(enrollment_id, send_at)
    # The enrollments with nothing due: everything moves by the time paused (one statement).
    scheduled.exclude(enrollment_id__in=list(first_due)).update(
        send_at=F("send_at") + (now - paused_at), updated_at=now
    )
    # The ones that came due: fresh jitter from now, later steps by the same amount.
    at = now
    for index, (enrollment_id, old) in enumerate(first_due.items()):
        if index:
            at += datetime.timedelta(seconds=random.uniform(campaign.min_wait_seconds, campaign.max_wait_seconds))  # noqa: S311
        scheduled.filter(enrollment_id=enrollment_id).update(send_at=F("send_at") + (at - old), updated_at=now)


def campaigns_complete_finished(*, limit: int = 100) -> list[Any]:
    """Complete the active campaigns that have nothing left to send; returns their ids.

    Both conditions are in the candidate query, so a campaign that only waits
    for its next batch to be dispatched never takes a place among the `limit`
    candidates (it would starve every other campaign of completion).
    """
    live, applying = _unfinished(OuterRef("pk"))
    undispatched = Enrollment.objects.filter(
        campaign_id=OuterRef("pk"), status=Enrollment.Status.PENDING, unsubscribed_at__isnull=True
    ).exclude(Exists(ScheduledSend.objects.filter(enrollment_id=OuterRef("pk"))))
    candidates = list(
        Campaign.objects.filter(status=Campaign.Status.ACTIVE, kind=Campaign.Kind.CAMPAIGN)  # journeys stay on
        .filter(~Exists(live), ~Exists(applying), ~Exists(undispatched))
        .values_list("pk", flat=True)[:limit]
    )
    return [campaign_id for campaign_id in candidates if campaign_complete(campaign_id=campaign_id)]


def campaign_complete(*, campaign_id: Any) -> bool:
    """Active → completed with its `campaign.completed` event (False when it was not active)."""
    with transaction.atomic():
        # Lock the campaign as dispatch does, so a dispatch in progress finishes (and its rows
        # become visible) before we look for live sends: never complete over fresh sends.
        status = Campaign.objects.select_for_update().filter(pk=campaign_id).values_list("status", flat=True).first()
        if status != Campaign.Status.ACTIVE:
            return False
        if any(rows.exists() for rows in _unfinished(campaign_id)):
            return False
        if not campaign_status_change(campaign_id=campaign_id, to=Campaign.Status.COMPLETED):
            return False
        campaign = Campaign.objects.select_related("account").get(pk=campaign_id)
        counts = Enrollment.objects.filter(campaign_id=campaign_id).aggregate(
            enrolled=Count("pk"),
            sent=Count("pk", filter=Q(sent_at__isnull=False)),
            opened=Count("pk", filter=Q(opened_at__isnull=False)),
            replied=Count("pk", filter=Q(replied_at__isnull=False)),
            bounced=Count("pk", filter=Q(status=Enrollment.Status.BOUNCED)),
            unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
        )
        webhook_event_record(
            account=campaign.account,
            type=events.CAMPAIGN_COMPLETED,
            data={
                "id": str(campaign.pk),
                "name": campaign.name,
                "outreach_id": str(campaign.outreach_id) if campaign.outreach_id else None,
                "completed_at": campaign.completed_at,
                "stats": counts,
            },
        )
    logger.info('Campaign "%s" completed: nothing left to send (%s)', campaign.name, counts)
    return True


def sends_release_unknown(*, campaign: Campaign, send_ids: list[Any] | None = None) -> int:
    """Operator decision: send these `unknown` rows again (all of the campaign's when `send_ids` is None).

    Each goes back to `scheduled`, due now, with a fresh claim; its enrollment's
    later steps are untouched. Returns how many were released.
    """
    now = timezone.now()
    rows = ScheduledSend.objects.filter(campaign=campaign, status=Status.UNKNOWN)
    if send_ids is not None:
        rows = rows.filter(pk__in=send_ids)
    with transaction.atomic():
        released = rows.update(
            status=Status.SCHEDULED, send_at=now, claimed_by="", lease_until=None, message_id=None, updated_at=now
        )
        if released:
            campaign_status_change(
                campaign_id=campaign.pk, to=Campaign.Status.ACTIVE, sources=(Campaign.Status.COMPLETED,)
            )
    return released
