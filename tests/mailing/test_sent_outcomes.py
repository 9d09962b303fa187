"""What a sent message leaves behind, however the worker batches it or dies: one row `sent`, its
enrollment moved once, its events once, its counters once; reservations given back; queries per message."""

import datetime
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.timezones import account_zone, local_day
from enrollments.models import Enrollment
from inbound.tasks import apply_open_hits_task, apply_pending_provider_events_task
from mailboxes.models import MailboxDay
from mailing import limits, tracking
from mailing.claiming import sends_reap_expired_leases
from mailing.models import AccountMonth, ScheduledSend, SmtpCredentialDay
from mailing.scheduling import campaigns_complete_finished
from webhooks.models import WebhookEvent

from .conftest import dispatch, enroll_contacts, make_campaign, run_until_idle

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15"


def _events(campaign) -> Counter:
    return Counter(
        (event.type, event.data["id"])
        for event in WebhookEvent.objects.filter(account=campaign.account, type__startswith="enrollment.")
    )


@override_settings(MAILING_OUTCOME_BATCH=4)
def test_every_sent_message_moves_its_enrollment_and_records_its_events_exactly_once(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server)
    enrollments = enroll_contacts(campaign, 11)  # batches of 4, 4 and the last 3 at the end of the chunk
    dispatch(api, campaign)
    run_until_idle(now=later)

    assert len(smtp_server.messages) == 11
    assert not ScheduledSend.objects.filter(campaign=campaign, outcome_pending=True).exists()
    for enrollment in Enrollment.objects.filter(campaign=campaign):
        assert enrollment.status == "sent" and enrollment.sent_at and enrollment.completed_at
        assert enrollment.smtp_credential_id is not None
    events = _events(campaign)
    assert set(events.values()) == {1}
    assert {uuid for _, uuid in events} == {str(e.uuid) for e in enrollments}
    assert Counter(kind for kind, _ in events) == {"enrollment.sent": 11, "enrollment.completed": 11}
    sent = WebhookEvent.objects.get(type="enrollment.sent", data__id=str(enrollments[0].uuid)).data
    row = ScheduledSend.objects.get(enrollment=enrollments[0])
    assert sent["step"] == 1 and sent["status"] == "sent" and sent["contact_email"] == enrollments[0].contact.email
    assert sent["sent_at"] == row.sent_at.isoformat().replace("+00:00", "Z")
    day = SmtpCredentialDay.objects.get(smtp_credential__campaign=campaign)
    assert (day.reserved, day.sent) == (11, 11)
    day = MailboxDay.objects.get(mailbox__credentials__campaign=campaign)
    assert (day.reserved, day.sent) == (11, 11)


def test_a_follow_up_in_the_same_chunk_goes_out_once_its_first_message_counted(api, owner, smtp_server, later):
    """Step 2 due with step 1 (no delay): the enrollment must be `sent` before step 2 is eligible."""
    campaign = make_campaign(owner, smtp_server, steps=((0,), (0,)))
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    run_until_idle(now=later)

    first, second = [message for _, _, message in smtp_server.messages]
    assert second["In-Reply-To"] == first["Message-ID"]
    enrollment.refresh_from_db()
    assert enrollment.status == "sent" and enrollment.completed_at is not None
    assert Counter(kind for kind, _ in _events(campaign)) == {"enrollment.sent": 1, "enrollment.completed": 1}


def test_the_reaper_applies_what_a_dead_worker_sent_but_did_not_apply_once(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 2)
    dispatch(api, campaign)
    sent_at = timezone.now() - datetime.timedelta(minutes=10)
    orphan = ScheduledSend.objects.filter(campaign=campaign).first()
    # What a worker killed between its `sent` mark and its next batch leaves behind.
    ScheduledSend.objects.filter(pk=orphan.pk).update(
        status="sent",
        outcome_pending=True,
        claimed_by="dead-worker",
        message_id="<orphan@example.com>",
        sent_at=sent_at,
        lease_until=timezone.now() - datetime.timedelta(minutes=5),
    )
    SmtpCredentialDay.objects.create(
        smtp_credential=orphan.smtp_credential, day=local_day(account_zone(owner), sent_at), reserved=1
    )
    MailboxDay.objects.create(
        mailbox=orphan.smtp_credential.mailbox, day=local_day(account_zone(owner), sent_at), reserved=1
    )

    sends_reap_expired_leases()
    sends_reap_expired_leases()  # a second tick finds nothing left to apply

    orphan.refresh_from_db()
    enrollment = Enrollment.objects.get(pk=orphan.enrollment_id)
    assert (orphan.status, orphan.outcome_pending, orphan.lease_until) == ("sent", False, None)
    assert enrollment.status == "sent" and enrollment.sent_at == sent_at and enrollment.completed_at == sent_at
    assert enrollment.smtp_credential_id == orphan.smtp_credential_id
    assert _events(campaign) == {
        ("enrollment.sent", str(enrollment.uuid)): 1,
        ("enrollment.completed", str(enrollment.uuid)): 1,
    }
    assert SmtpCredentialDay.objects.get(smtp_credential=orphan.smtp_credential).sent == 1
    assert MailboxDay.objects.get(mailbox=orphan.smtp_credential.mailbox).sent == 1
    assert Enrollment.objects.filter(campaign=campaign, status="pending").count() == 1  # the other one waits


def test_the_reaper_leaves_a_live_workers_sent_rows_to_it(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    ScheduledSend.objects.filter(campaign=campaign).update(
        status="sent",
        outcome_pending=True,
        claimed_by="busy-worker",
        sent_at=timezone.now(),
        lease_until=timezone.now() + datetime.timedelta(minutes=5),
    )
    sends_reap_expired_leases()
    assert ScheduledSend.objects.get(campaign=campaign).outcome_pending is True
    assert Enrollment.objects.get(campaign=campaign).status == "pending"


def test_a_chunk_gives_back_the_reservations_it_did_not_use(api, owner, smtp_server, later):
    owner.monthly_limit = 1000
    owner.save()
    campaign = make_campaign(owner, smtp_server, daily_limit=200)
    enroll_contacts(campaign, 3)
    dispatch(api, campaign)
    run_until_idle(now=later)

    day = SmtpCredentialDay.objects.get(smtp_credential__campaign=campaign)
    assert (day.reserved, day.sent) == (3, 3)
    day = MailboxDay.objects.get(mailbox__credentials__campaign=campaign)
    assert (day.reserved, day.sent) == (3, 3)
    assert AccountMonth.objects.get(account=owner).reserved == 3


def test_a_daily_limit_reached_mid_chunk_sends_exactly_up_to_it(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, daily_limit=3)
    enroll_contacts(campaign, 5)
    dispatch(api, campaign)
    # Dispatch planned 3 today and 2 tomorrow; make them all due now, as after a long pause.
    ScheduledSend.objects.filter(campaign=campaign).update(send_at=timezone.now() - datetime.timedelta(seconds=1))
    run_until_idle()

    assert len(smtp_server.messages) == 3
    day = SmtpCredentialDay.objects.get(smtp_credential__campaign=campaign, day=timezone.localdate())
    assert (day.reserved, day.sent) == (3, 3)
    day = MailboxDay.objects.get(mailbox__credentials__campaign=campaign, day=timezone.localdate())
    assert (day.reserved, day.sent) == (3, 3)
    waiting = ScheduledSend.objects.filter(campaign=campaign, status="scheduled")
    assert waiting.count() == 2
    assert all(timezone.localdate(row.send_at) > timezone.localdate() for row in waiting)


def _queries_to_send(api, owner, smtp_server, count: int) -> int:
    campaign = make_campaign(owner, smtp_server, daily_limit=500)
    enroll_contacts(campaign, count, domain=f"n{count}.example.com")
    dispatch(api, campaign)
    with CaptureQueriesContext(connection) as queries:
        run_until_idle(now=timezone.now() + datetime.timedelta(days=400))
    assert ScheduledSend.objects.filter(campaign=campaign, status="sent").count() == count
    return len(queries)


@override_settings(MAILING_OUTCOME_BATCH=100, MAILING_CHUNK_SIZE=100)
def test_each_message_costs_one_statement_whatever_the_chunk(api, owner, smtp_server):
    """One statement per message (the sending commit that also marks the one before it sent); the
    consequences cost the same few statements for 5 messages as for 45."""
    few = _queries_to_send(api, owner, smtp_server, 5)
    many = _queries_to_send(api, owner, smtp_server, 45)
    # 40 more messages: 40 statements, and one more block of reservations (a few statements).
    assert many - few <= 40 + 8, (few, many)


def _sent_but_not_applied(campaign, *, lease_minutes: int = 5) -> ScheduledSend:
    """A step-1 row as a live worker leaves it between its `sent` mark and its next batch."""
    row = ScheduledSend.objects.get(campaign=campaign, step__position=1)
    ScheduledSend.objects.filter(pk=row.pk).update(
        status="sent",
        outcome_pending=True,
        claimed_by="busy-worker",
        message_id=f"<{row.pk.hex}@example.com>",
        sent_at=timezone.now() - datetime.timedelta(seconds=3),
        lease_until=timezone.now() + datetime.timedelta(minutes=lease_minutes),
    )
    row.refresh_from_db()
    return row


def test_a_campaign_does_not_complete_while_what_it_sent_is_still_being_applied(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    _sent_but_not_applied(campaign)

    assert campaigns_complete_finished() == []
    sends_reap_expired_leases(now=timezone.now() + datetime.timedelta(minutes=10))  # the worker died after all
    assert campaigns_complete_finished() == [campaign.pk]
    completed = WebhookEvent.objects.get(type="campaign.completed").data
    assert completed["stats"]["sent"] == 1


def test_an_open_of_a_message_not_applied_yet_moves_its_enrollment_through_sent(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    row = _sent_but_not_applied(campaign)

    response = Client(HTTP_USER_AGENT=BROWSER).get(urlsplit(tracking.open_pixel_url(row)).path)
    apply_open_hits_task()

    assert response.status_code == 200
    enrollment.refresh_from_db()
    assert enrollment.status == "opened" and enrollment.sent_at == row.sent_at
    kinds = list(
        WebhookEvent.objects.filter(type__startswith="enrollment.")
        .order_by("created_at")
        .values_list("type", flat=True)
    )
    assert kinds == ["enrollment.sent", "enrollment.completed", "enrollment.opened"]
    assert ScheduledSend.objects.get(pk=row.pk).outcome_pending is False


def test_an_unsubscribe_from_a_message_not_applied_yet_records_it_sent_first(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)))
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    row = _sent_but_not_applied(campaign)

    response = Client().post(urlsplit(tracking.unsubscribe_url(row)).path)

    assert response.status_code == 200
    enrollment.refresh_from_db()
    assert enrollment.status == "sent" and enrollment.unsubscribed_at is not None
    kinds = list(
        WebhookEvent.objects.filter(type__startswith="enrollment.")
        .order_by("created_at")
        .values_list("type", flat=True)
    )
    assert kinds == ["enrollment.sent", "enrollment.unsubscribed"]


def test_a_single_step_enrollment_is_sent_then_completed_in_that_order(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 3)
    dispatch(api, campaign)
    run_until_idle(now=later)

    for enrollment in Enrollment.objects.filter(campaign=campaign):
        sent, completed = WebhookEvent.objects.filter(data__id=str(enrollment.uuid)).order_by("created_at")
        assert (sent.type, completed.type) == ("enrollment.sent", "enrollment.completed")
        assert sent.data["completed_at"] is None and completed.data["completed_at"] is not None
        deliveries_due = [event.created_at for event in (sent, completed)]
        assert deliveries_due[0] < deliveries_due[1]


def test_a_chunk_holds_day_reservations_for_its_first_messages_only(owner, smtp_server):
    """A block sized by what the chunk will send: follow-ups never hold the day's first-message slots."""
    campaign = make_campaign(owner, smtp_server, daily_limit=10)
    credential = campaign.smtp_credentials.get()
    day = timezone.localdate()
    limits.limits_ensure_rows(credential=credential, account=owner, day=day)
    allowance = limits.Allowance(credential=credential, account=owner)

    assert allowance.take(day=day, first_message=True, firsts_left=1, left=10) is None
    assert SmtpCredentialDay.objects.get(smtp_credential=credential, day=day).reserved == 1
    assert MailboxDay.objects.get(mailbox=credential.mailbox, day=day).reserved == 1
    assert AccountMonth.objects.get(account=owner).reserved == 10
    for _ in range(9):
        assert allowance.take(day=day, first_message=False, firsts_left=0, left=9) is None
    allowance.close()
    assert SmtpCredentialDay.objects.get(smtp_credential=credential, day=day).reserved == 1
    assert MailboxDay.objects.get(mailbox=credential.mailbox, day=day).reserved == 1
    assert AccountMonth.objects.get(account=owner).reserved == 10


def _handed_over_not_written(campaign) -> ScheduledSend:
    """A step-1 row the server has just taken: still `sending` until the worker's next statement."""
    row = ScheduledSend.objects.get(campaign=campaign, step__position=1)
    ScheduledSend.objects.filter(pk=row.pk).update(
        status="sending",
        claimed_by="busy-worker",
        message_id=f"<{row.pk.hex}@example.com>",
        lease_until=timezone.now() + datetime.timedelta(minutes=5),
    )
    row.refresh_from_db()
    return row


def _worker_writes_sent(row) -> None:
    ScheduledSend.objects.filter(pk=row.pk).update(status="sent", outcome_pending=True, sent_at=timezone.now())


def test_an_open_arriving_while_its_message_is_still_sending_waits_for_the_worker(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    row = _handed_over_not_written(campaign)

    Client(HTTP_USER_AGENT=BROWSER).get(urlsplit(tracking.open_pixel_url(row)).path)
    apply_open_hits_task()
    enrollment.refresh_from_db()
    assert enrollment.status == "pending"  # not dropped: kept for a later round

    _worker_writes_sent(row)
    apply_open_hits_task()
    enrollment.refresh_from_db()
    assert enrollment.status == "opened"


def test_a_provider_bounce_arriving_while_its_message_is_still_sending_is_applied_later(
    anon_api, owner, smtp_server, api, settings
):
    campaign = make_campaign(owner, smtp_server)
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    row = _handed_over_not_written(campaign)
    settings.PROVIDER_EVENT_GRACE_SECONDS = 0
    payload = {
        "event": "bounce",
        "bounce": "hard",
        "rcpt": enrollment.contact.email,
        "email_id": "1rUxUc-early",
        "time": "2026-11-20T10:15:02Z",
        "message": "550 5.1.1 User unknown",
        "Message-Id": row.message_id,
    }
    response = anon_api.post(
        f"/api/inbound/smtp2go/{owner.inbound_webhook_token}", data=payload, format="json"
    )  # its task is not run here; the sweeper applies it
    assert response.status_code == 200

    apply_pending_provider_events_task()
    enrollment.refresh_from_db()
    assert enrollment.status == "pending"  # the send is in flight: the event waits

    _worker_writes_sent(row)
    apply_pending_provider_events_task()
    enrollment.refresh_from_db()
    assert enrollment.status == "bounced" and enrollment.sent_at is not None
    assert enrollment.smtp_credential_id == row.smtp_credential_id  # counted against its credential
    kinds = list(
        WebhookEvent.objects.filter(type__startswith="enrollment.")
        .order_by("created_at")
        .values_list("type", flat=True)
    )
    assert kinds == ["enrollment.sent", "enrollment.completed", "enrollment.bounced"]
