"""The one eligibility rule: the pre-check, the `sending` commit and the refusal agree, condition by condition."""

import datetime

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from contacts.models import Contact
from enrollments.models import Enrollment
from mailboxes.models import Mailbox
from mailing import eligibility
from mailing.models import ScheduledSend
from mailing.outcomes import Kind
from mailing.sending import _Ledger
from tests.campaigns.factories import SequenceStepFactory, SmtpCredentialFactory, enroll

pytestmark = pytest.mark.django_db

WORKER = "host:1"


def _claimed_row(owner, *, position=1, enrollment_status="pending"):
    campaign = Campaign.objects.create(account=owner, name="Rule", status=Campaign.Status.ACTIVE)
    steps = {n: SequenceStepFactory(campaign=campaign, position=n) for n in range(1, position + 1)}
    credential = SmtpCredentialFactory(campaign=campaign)
    enrollment = enroll(campaign, enrollment_status)
    now = timezone.now()
    rows = {
        n: ScheduledSend.objects.create(
            campaign=campaign,
            enrollment=enrollment,
            step=step,
            smtp_credential=credential,
            status="queued" if n == position else "sent",
            send_at=now,
            claimed_by=WORKER,
            lease_until=now + datetime.timedelta(minutes=5),
        )
        for n, step in steps.items()
    }
    row = ScheduledSend.objects.select_related("step").get(pk=rows[position].pk)
    return row, rows


def _mailbox_of(row):
    return Mailbox.objects.filter(credentials=row.smtp_credential_id)


def _disable_mailbox(row, rows):
    _mailbox_of(row).update(disabled_at=timezone.now())


CASES = {
    "eligible": (lambda row, rows: None, None, ""),
    "claimed by another worker": (
        lambda row, rows: ScheduledSend.objects.filter(pk=row.pk).update(claimed_by="other:2"),
        Kind.LOST,
        "not_claimed",
    ),
    "campaign paused": (
        lambda row, rows: Campaign.objects.filter(pk=row.campaign_id).update(status="paused"),
        Kind.REQUEUED,
        "campaign_inactive",
    ),
    "mailbox disabled": (_disable_mailbox, Kind.REQUEUED, "credential_disabled"),
    "mailbox without a sender address": (
        lambda row, rows: _mailbox_of(row).update(email=""),
        Kind.REQUEUED,
        "credential_disabled",
    ),
    "oauth2 mailbox not connected yet": (
        lambda row, rows: _mailbox_of(row).update(auth_kind="oauth2", oauth_provider="google", oauth_refresh_token=""),
        Kind.REQUEUED,
        "credential_disabled",
    ),
    "enrollment already sent": (
        lambda row, rows: Enrollment.objects.filter(pk=row.enrollment_id).update(status="sent", sent_at=timezone.now()),
        Kind.CANCELED,
        "enrollment_ineligible",
    ),
    "enrollment unsubscribed": (
        lambda row, rows: Enrollment.objects.filter(pk=row.enrollment_id).update(unsubscribed_at=timezone.now()),
        Kind.CANCELED,
        "enrollment_ineligible",
    ),
    "contact unsubscribed": (
        lambda row, rows: Contact.objects.filter(enrollments=row.enrollment_id).update(subscribed=False),
        Kind.CANCELED,
        "contact_unsubscribed",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_pre_check_the_sending_commit_and_the_refusal_ask_the_same_question(owner, case):
    breaks, kind, reason = CASES[case]
    row, rows = _claimed_row(owner)
    breaks(row, rows)

    passes = kind is None
    assert (row.pk in eligibility.eligible_ids([row], WORKER)) is passes
    refusal = eligibility.refusal(row=row, day=timezone.localdate(), worker=WORKER)
    assert (refusal.kind, refusal.reason) == ((Kind.REQUEUED, "eligible_again") if passes else (kind, reason))
    assert _Ledger(row.smtp_credential, WORKER).advance(row, f"<{row.pk.hex}@example.com>") is passes


@pytest.mark.parametrize(
    ("first_status", "reason"), [("sent", "first_step_pending"), ("unknown", "first_step_unknown")]
)
def test_a_follow_up_of_an_enrollment_still_pending_waits_for_its_first_message(owner, first_status, reason):
    row, rows = _claimed_row(owner, position=2)
    ScheduledSend.objects.filter(pk=rows[1].pk).update(status=first_status)

    assert eligibility.eligible_ids([row], WORKER) == set()
    refusal = eligibility.refusal(row=row, day=timezone.localdate(), worker=WORKER)
    assert (refusal.kind, refusal.reason) == (Kind.DEFERRED, reason)
    assert not _Ledger(row.smtp_credential, WORKER).advance(row, "<f@example.com>")


def test_a_follow_up_goes_once_its_enrollment_is_sent(owner):
    row, _ = _claimed_row(owner, position=2, enrollment_status="sent")

    assert eligibility.eligible_ids([row], WORKER) == {row.pk}
    assert _Ledger(row.smtp_credential, WORKER).advance(row, "<g@example.com>")
