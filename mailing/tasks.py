"""Celery tasks of the sending engine (thin: each calls one service).

`claim_due_sends_task` runs on beat every `MAILING_TICK_SECONDS`: it reaps
expired leases, claims due rows in chunks (SKIP LOCKED) and enqueues one
`send_chunk_task` per (credential, chunk) after each chunk's commit, so one
SMTP connection serves the whole chunk. It also completes campaigns that
have nothing left to send. The rows in PostgreSQL are the schedule: a task
lost by the broker only delays its rows until their lease expires.
"""

from typing import Any

from celery import shared_task

from campaigns.models import Campaign
from core.errors import ApplicationError

from .claiming import sends_claim_due
from .dispatch import campaign_dispatch
from .scheduling import campaigns_complete_finished
from .sending import send_chunk


def _enqueue(credential_id, send_ids, claim_token) -> None:
    send_chunk_task.delay(str(credential_id), [str(i) for i in send_ids], claim_token)


@shared_task(name="mailing.claim_due_sends", ignore_result=True)
def claim_due_sends_task() -> int:
    report = sends_claim_due(enqueue=_enqueue)
    campaigns_complete_finished()
    return report.claimed


@shared_task(name="mailing.send_chunk", ignore_result=True)
def send_chunk_task(smtp_credential_id: str, send_ids: list[str], claim_token: str) -> int:
    return send_chunk(smtp_credential_id=smtp_credential_id, send_ids=send_ids, claim_token=claim_token).sent


@shared_task(name="mailing.dispatch_batch", ignore_result=True)
def dispatch_batch_task(campaign_id: str, batch_number: int) -> int:
    """A batch of one enrolled into a campaign that already sends (/v1 enroll): schedule it now.

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


def dispatch_batch_soon(campaign_id: Any, batch_number: int) -> None:
    """`enrollments.services.enrollment_start`'s `dispatch_batch`: the batch goes to a worker."""
    dispatch_batch_task.delay(str(campaign_id), batch_number)
