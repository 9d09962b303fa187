"""Delivery to real SMTP servers: headers, tags, bounces, retries, limits, pause/resume, completion."""

import datetime
import itertools

import pytest
from django.test import override_settings
from django.utils import timezone

from campaigns.models import Campaign
from enrollments.models import Enrollment
from mailboxes.models import Mailbox, MailboxDay
from mailing.claiming import sends_reap_expired_leases
from mailing.models import ScheduledSend, SmtpCredentialDay
from mailing.services import BOUNCE_GUARD_MIN_SENDS
from webhooks.models import WebhookEvent

from .conftest import dispatch, enroll_contacts, make_campaign, run_until_idle

pytestmark = pytest.mark.django_db


def test_sends_arrive_rendered_with_message_id_unsubscribe_headers_and_threading(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)))
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    run_until_idle(now=later)

    first, second = [m for _, _, m in smtp_server.messages]
    rows = list(ScheduledSend.objects.filter(enrollment=enrollment).order_by("step__position"))
    assert [r.status for r in rows] == ["sent", "sent"]
    assert first["Message-ID"] == rows[0].message_id and rows[0].message_id.endswith("@127.0.0.1>")
    assert first["Subject"] == "Hi Ann0" and second["Subject"] == "Re: Hi Ann0"
    assert first["To"] == enrollment.contact.email
    assert "In-Reply-To" not in first
    assert second["In-Reply-To"] == rows[0].message_id and second["References"] == rows[0].message_id
    assert first["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/u/")
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.get_content_type() == "multipart/alternative"
    text = first.get_body(("plain",)).get_content()
    html = first.get_body(("html",)).get_content()
    assert "Hello Ann0 from step 1" in text and "/u/" in text and "<p>" not in text
    assert "Hello Ann0 from step 1" in html and "/t/o/" in html and "Unsubscribe</a>" in html

    enrollment.refresh_from_db()
    assert enrollment.status == "sent" and enrollment.smtp_credential_id == rows[0].smtp_credential_id
    assert enrollment.completed_at is not None
    types = list(WebhookEvent.objects.order_by("created_at").values_list("type", flat=True))
    assert types == ["enrollment.sent", "enrollment.completed"]


def test_a_5xx_bounces_the_enrollment_cancels_later_steps_and_records_the_event(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)))
    ok, bad = enroll_contacts(campaign, 2)
    smtp_server.reject.add(bad.contact.email)
    dispatch(api, campaign)
    run_until_idle(now=later)

    bad.refresh_from_db()
    assert bad.status == "bounced" and bad.bounce_reason.startswith("550 5.1.1")
    statuses = list(
        ScheduledSend.objects.filter(enrollment=bad).order_by("step__position").values_list("status", flat=True)
    )
    assert statuses == ["bounced", "canceled"]
    assert smtp_server.recipients() == [ok.contact.email, ok.contact.email]
    event = WebhookEvent.objects.get(type="enrollment.bounced")
    assert event.data["bounce_reason"].startswith("550") and event.data["step"] == 1


def test_a_5xx_after_data_is_a_bounce_too(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server)
    (enrollment,) = enroll_contacts(campaign, 1)
    smtp_server.data_reject.add(enrollment.contact.email)
    dispatch(api, campaign)
    run_until_idle(now=later)
    enrollment.refresh_from_db()
    assert enrollment.status == "bounced" and enrollment.bounce_reason.startswith("554")


def test_the_mailbox_is_disabled_at_its_campaigns_bounce_threshold_and_its_sends_move(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server, credentials=2, bounce_rate_threshold=10.0)
    first, second = campaign.smtp_credentials.order_by("created_at", "id")
    enrollments = enroll_contacts(campaign, 60)
    dispatch(api, campaign)
    # Let the first credential send 20 messages, 2 of them bouncing (10%): it must be disabled.
    # In the worker's own order (send_at, then id: with no jitter many rows share a send_at), so
    # that the two bounces are the 19th and 20th messages and the guard sees 20 sends at the last.
    first_rows = list(ScheduledSend.objects.filter(smtp_credential=first).order_by("send_at", "id"))
    for row in first_rows[18:20]:
        smtp_server.reject.add(row.enrollment.contact.email)
    ScheduledSend.objects.filter(pk__in=[r.pk for r in first_rows[20:]]).update(
        send_at=later + datetime.timedelta(days=5)
    )
    ScheduledSend.objects.filter(smtp_credential=second).update(send_at=later + datetime.timedelta(days=5))
    run_until_idle(now=later)

    first.mailbox.refresh_from_db()
    assert first.mailbox.disabled_at is not None and "10.0%" in first.mailbox.disabled_reason
    second.mailbox.refresh_from_db()
    assert second.mailbox.disabled_at is None
    assert WebhookEvent.objects.filter(type="smtp_credential.disabled", data__id=str(first.pk)).exists()
    assert WebhookEvent.objects.filter(type="mailbox.disabled", data__id=str(first.mailbox_id)).exists()
    # Its remaining sends went to the other credential.
    assert not ScheduledSend.objects.filter(smtp_credential=first, status="scheduled").exists()
    run_until_idle(now=later + datetime.timedelta(days=6))
    assert Enrollment.objects.filter(campaign=campaign, status="sent").count() == len(enrollments) - 2
    assert BOUNCE_GUARD_MIN_SENDS == 20


def test_a_credential_under_the_minimum_sends_is_never_disabled(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server, bounce_rate_threshold=5.0)
    enrollments = enroll_contacts(campaign, 5)
    smtp_server.reject.add(enrollments[0].contact.email)
    dispatch(api, campaign)
    run_until_idle(now=later)
    assert campaign.smtp_credentials.get().mailbox.disabled_at is None  # 20% of 5: too few to judge


@override_settings(MAILING_MAX_ATTEMPTS=3, MAILING_RETRY_BASE_SECONDS=60)
def test_a_4xx_is_retried_with_backoff_and_fails_after_the_limit(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)))
    (enrollment,) = enroll_contacts(campaign, 1)
    smtp_server.tempfail.add(enrollment.contact.email)
    dispatch(api, campaign)
    row = ScheduledSend.objects.get(enrollment=enrollment, step__position=1)

    now = timezone.now() + datetime.timedelta(seconds=1)
    run_until_idle(now=now)
    row.refresh_from_db()
    assert row.status == "scheduled" and row.attempts == 1 and row.last_error.startswith("RCPT TO: 421")
    assert datetime.timedelta(seconds=47) <= row.send_at - now <= datetime.timedelta(seconds=73)

    smtp_server.tempfail.clear()  # the server recovers: the retry goes through
    run_until_idle(now=row.send_at)
    row.refresh_from_db()
    assert row.status == "sent" and smtp_server.recipients() == [enrollment.contact.email]

    other_campaign = make_campaign(owner, smtp_server)
    (stuck,) = enroll_contacts(other_campaign, 1)
    smtp_server.tempfail.add(stuck.contact.email)
    dispatch(api, other_campaign)
    run_until_idle(now=later)  # each retry is due by then: attempts run out
    stuck_row = ScheduledSend.objects.get(enrollment=stuck)
    assert stuck_row.status == "failed" and stuck_row.attempts == 3


def test_an_unreachable_server_retries_the_whole_chunk_without_sending(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 3)
    Mailbox.objects.filter(credentials__campaign=campaign).update(smtp_port=1)  # nothing listens there
    dispatch(api, campaign)
    run_until_idle(now=timezone.now() + datetime.timedelta(seconds=1))
    rows = ScheduledSend.objects.filter(campaign=campaign)
    assert {r.status for r in rows} == {"scheduled"} and {r.attempts for r in rows} == {1}
    assert all("ConnectionRefused" in r.last_error for r in rows)


def test_the_daily_limit_is_reserved_at_send_time_and_the_rest_waits_for_tomorrow(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, daily_limit=2)
    enroll_contacts(campaign, 2)
    dispatch(api, campaign)
    credential = campaign.smtp_credentials.get()
    # Another process (another campaign using the mailbox, say) used today's allowance meanwhile.
    MailboxDay.objects.create(mailbox=credential.mailbox, day=timezone.localdate(), reserved=1)
    run_until_idle(now=timezone.now() + datetime.timedelta(seconds=1))
    assert len(smtp_server.messages) == 1
    day = MailboxDay.objects.get(mailbox=credential.mailbox, day=timezone.localdate())
    assert day.reserved == 2 and day.sent == 1
    own = SmtpCredentialDay.objects.get(smtp_credential=credential, day=timezone.localdate())
    assert own.reserved == 1 and own.sent == 1
    waiting = ScheduledSend.objects.get(campaign=campaign, status="scheduled")
    assert timezone.localdate(waiting.send_at) == timezone.localdate() + datetime.timedelta(days=1)


def test_the_plan_limit_is_rechecked_at_send_time(api, owner, smtp_server):
    owner.monthly_limit = 1
    owner.save()
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 2)
    dispatch(api, campaign)
    run_until_idle(now=timezone.now() + datetime.timedelta(seconds=1))
    assert len(smtp_server.messages) == 1
    waiting = ScheduledSend.objects.get(campaign=campaign, status="scheduled")
    assert waiting.send_at.astimezone(datetime.UTC).day == 1 and waiting.last_error == "plan_limit reached"
    # The month's allowance is used up: dispatch refuses before it looks for pending enrollments.
    response = api.post(f"/api/campaigns/{campaign.pk}/dispatch", {}, format="json")
    assert response.status_code == 402, response.json()
    assert response.json()["error"]["code"] == "plan_limit_reached"


def test_pause_stops_sending_and_resume_loses_nothing_and_keeps_step_gaps(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)), min_wait_seconds=10, max_wait_seconds=20)
    enroll_contacts(campaign, 3)
    dispatch(api, campaign)
    assert api.post(f"/api/campaigns/{campaign.pk}/pause").json()["status"] == "paused"
    assert api.post(f"/api/campaigns/{campaign.pk}/pause").json()["error"]["code"] == "campaign_not_active"

    run_until_idle(now=timezone.now() + datetime.timedelta(hours=3))  # all due, but paused: nothing goes
    assert smtp_server.messages == []
    # Simulate a pause that lasted two hours.
    from mailing.models import CampaignPause

    CampaignPause.objects.filter(campaign=campaign).update(paused_at=timezone.now() - datetime.timedelta(hours=2))
    came_due = timezone.now() - datetime.timedelta(hours=1)
    ScheduledSend.objects.filter(campaign=campaign, step__position=1).update(send_at=came_due)
    ScheduledSend.objects.filter(campaign=campaign, step__position=2).update(
        send_at=came_due + datetime.timedelta(minutes=60)
    )
    before = timezone.now()
    assert api.post(f"/api/campaigns/{campaign.pk}/resume").json()["status"] == "active"
    assert api.post(f"/api/campaigns/{campaign.pk}/resume").json()["error"]["code"] == "campaign_not_paused"

    firsts = list(ScheduledSend.objects.filter(campaign=campaign, step__position=1).order_by("send_at"))
    assert before <= firsts[0].send_at <= timezone.now()
    gaps = [(b.send_at - a.send_at).total_seconds() for a, b in itertools.pairwise(firsts)]
    assert all(10 - 0.001 <= g <= 20 + 0.001 for g in gaps)
    for first in firsts:
        second = ScheduledSend.objects.get(enrollment_id=first.enrollment_id, step__position=2)
        assert second.send_at - first.send_at == datetime.timedelta(minutes=60)
    run_until_idle(now=timezone.now() + datetime.timedelta(hours=2))
    assert len(smtp_server.messages) == 6


def test_send_forecast_buckets_by_day_step_and_credential(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (1440,)), credentials=2, daily_limit=2)
    enroll_contacts(campaign, 5)
    dispatch(api, campaign)
    credentials = [str(c.pk) for c in campaign.smtp_credentials.order_by("created_at", "id")]
    response = api.get(f"/api/campaigns/{campaign.pk}/send_forecast?days=4")
    body = response.json()
    assert response.status_code == 200 and len(body) == 4
    today = timezone.localdate()
    assert [b["date"] for b in body] == [(today + datetime.timedelta(days=i)).isoformat() for i in range(4)]
    assert body[0] == {
        "date": today.isoformat(),
        "total": 4,
        "by_step": {"1": 4},
        "by_credential": dict.fromkeys(credentials, 2),
    }
    assert body[1]["total"] == 5 and body[1]["by_step"] == {"1": 1, "2": 4}
    assert body[2]["by_step"] == {"2": 1} and body[3]["total"] == 0
    assert len(api.get(f"/api/campaigns/{campaign.pk}/send_forecast").json()) == 7
    for bad in ("0", "91", "x"):
        bad_response = api.get(f"/api/campaigns/{campaign.pk}/send_forecast?days={bad}")
        assert bad_response.status_code == 422 and bad_response.json()["error"]["code"] == "validation_failed"


def test_the_campaign_completes_when_nothing_is_left_to_send(api, owner, smtp_server, later):
    from mailing.tasks import claim_due_sends_task

    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 2)
    dispatch(api, campaign)
    run_until_idle(now=later)
    claim_due_sends_task()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED and campaign.completed_at is not None
    event = WebhookEvent.objects.get(type="campaign.completed")
    assert event.data["stats"] == {"enrolled": 2, "sent": 2, "opened": 0, "replied": 0, "bounced": 0, "unsubscribed": 0}


def test_a_stopped_enrollment_is_never_sent_its_next_step(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)))
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    run_until_idle(now=timezone.now() + datetime.timedelta(seconds=1))
    Enrollment.objects.filter(pk=enrollment.pk).update(status="replied", replied_at=timezone.now())
    run_until_idle(now=later)
    assert len(smtp_server.messages) == 1
    assert ScheduledSend.objects.get(enrollment=enrollment, step__position=2).status == "canceled"


def test_expired_leases_requeue_claimed_rows_and_flag_started_sends_unknown(api, owner, smtp_server, later):
    campaign = make_campaign(owner, smtp_server)
    first, second = enroll_contacts(campaign, 2)
    dispatch(api, campaign)
    past = timezone.now() - datetime.timedelta(seconds=1)
    ScheduledSend.objects.filter(enrollment=first).update(status="queued", claimed_by="w", lease_until=past)
    ScheduledSend.objects.filter(enrollment=second).update(status="sending", claimed_by="w", lease_until=past)
    assert sends_reap_expired_leases() == (1, 1)
    assert ScheduledSend.objects.get(enrollment=first).status == "scheduled"
    assert ScheduledSend.objects.get(enrollment=second).status == "unknown"
    run_until_idle(now=later)
    assert smtp_server.recipients() == [first.contact.email]  # the unknown one is not re-sent

    listed = api.get(f"/api/campaigns/{campaign.pk}/unknown_sends").json()
    assert [row["contact_email"] for row in listed] == [second.contact.email]
    released = api.post(f"/api/campaigns/{campaign.pk}/unknown_sends/release", {}, format="json").json()
    assert released == {"released": 1}
    run_until_idle(now=later)
    assert smtp_server.recipients() == [first.contact.email, second.contact.email]


def test_test_send_sends_every_step_to_each_address_without_enrolling(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)))
    from tests.factories import ContactFactory

    ContactFactory(account=owner, email="me@example.com", first_name="Mia")
    response = api.post(
        f"/api/campaigns/{campaign.pk}/test_send", {"emails": ["me@example.com", "boss@example.com"]}, format="json"
    )
    body = response.json()
    assert response.status_code == 200, body
    assert [(m["email"], m["step"], m["accepted"]) for m in body["messages"]] == [
        ("me@example.com", 1, True),
        ("me@example.com", 2, True),
        ("boss@example.com", 1, True),
        ("boss@example.com", 2, True),
    ]
    subjects = [m["Subject"] for _, _, m in smtp_server.messages]
    assert subjects == ["Hi Mia", "Re: Hi Mia", "Hi Mia", "Re: Hi Mia"]
    assert smtp_server.messages[1][2]["In-Reply-To"] == body["messages"][0]["message_id"]
    assert not Enrollment.objects.exists() and not ScheduledSend.objects.exists()
    assert not SmtpCredentialDay.objects.exists() and not MailboxDay.objects.exists()
    for bad in ({"emails": []}, {"emails": ["nope"]}, {"emails": [f"a{i}@x.com" for i in range(11)]}, {}):
        assert api.post(f"/api/campaigns/{campaign.pk}/test_send", bad, format="json").status_code == 422


def test_test_send_reports_an_unreachable_server(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    Mailbox.objects.filter(credentials__campaign=campaign).update(smtp_port=1)
    response = api.post(f"/api/campaigns/{campaign.pk}/test_send", {"emails": ["me@example.com"]}, format="json")
    assert response.status_code == 502 and response.json()["error"]["code"] == "smtp_unavailable"


def test_follow_ups_do_not_count_against_the_daily_limit(api, owner, smtp_server, later):
    """The daily limit is for first messages, as dispatch plans it; follow-ups go out on a full day."""
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)), daily_limit=1)
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    run_until_idle(now=timezone.now() + datetime.timedelta(seconds=1))  # step 1 uses the day's only slot
    credential = campaign.smtp_credentials.get()
    step2 = ScheduledSend.objects.get(enrollment=enrollment, step__position=2)
    # The follow-up comes due on a day whose first-message allowance is already used up.
    day = timezone.localdate(step2.send_at)
    MailboxDay.objects.update_or_create(mailbox=credential.mailbox, day=day, defaults={"reserved": 1})
    run_until_idle(now=step2.send_at + datetime.timedelta(seconds=1))
    step2.refresh_from_db()
    assert step2.status == "sent"
    assert len(smtp_server.messages) == 2
    assert MailboxDay.objects.get(mailbox=credential.mailbox, day=day).reserved == 1


def test_the_campaign_bounce_rate_counts_every_message_sent_as_the_guard_does(api, owner, smtp_server, later):
    """Two steps to four contacts, one bouncing at step 1: 1 bounce over 7 messages, not over 4 enrollments."""
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)))
    enrollments = enroll_contacts(campaign, 4)
    smtp_server.reject.add(enrollments[0].contact.email)
    dispatch(api, campaign)
    run_until_idle(now=later)
    assert len(smtp_server.messages) == 6
    stats = api.get(f"/api/campaigns/{campaign.pk}").json()
    assert stats["totals"]["bounced"] == 1
    assert stats["rates"]["bounce_rate"] == round(100 / 7, 1)
    assert stats["credentials"][0]["bounce_rate"] == round(100 / 7, 1)


def test_campaigns_waiting_for_their_next_batch_never_keep_others_from_completing(api, owner, smtp_server, later):
    from mailing.scheduling import campaigns_complete_finished

    waiting = []
    for _ in range(3):  # batch 1 sent, batch 2 not dispatched yet: not finished
        campaign = make_campaign(owner, smtp_server)
        enroll_contacts(campaign, 1)
        enroll_contacts(campaign, 1, batch=2, domain="example.org")
        dispatch(api, campaign)
        waiting.append(campaign)
    finished = make_campaign(owner, smtp_server)
    enroll_contacts(finished, 1)
    dispatch(api, finished)
    run_until_idle(now=later)

    assert campaigns_complete_finished(limit=1) == [finished.pk]
    assert {c.status for c in Campaign.objects.filter(pk__in=[c.pk for c in waiting])} == {"active"}


def test_a_follow_up_waits_hours_without_any_envelope_while_step_1_is_unknown(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (60,)))
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    first = ScheduledSend.objects.get(enrollment=enrollment, step__position=1)
    second = ScheduledSend.objects.get(enrollment=enrollment, step__position=2)
    ScheduledSend.objects.filter(pk=first.pk).update(status="unknown")  # a worker died mid-send
    smtp_server.reject.add("*")  # any envelope would now bounce the enrollment
    now = second.send_at + datetime.timedelta(seconds=1)
    run_until_idle(now=now)

    second.refresh_from_db()
    assert second.status == "scheduled"
    assert second.send_at >= timezone.now() + datetime.timedelta(hours=5)
    assert "unknown" in second.last_error
    enrollment.refresh_from_db()
    assert enrollment.status == "pending" and enrollment.bounced_at is None
    assert smtp_server.messages == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3", "[::1]"])
def test_smtp_hosts_on_our_own_network_are_refused_in_production(api, owner, smtp_server, host):
    campaign = make_campaign(owner, smtp_server)
    Mailbox.objects.filter(credentials__campaign=campaign).update(smtp_host=host.strip("[]"))
    with override_settings(MAILING_ALLOW_PRIVATE_HOSTS=False):
        response = api.post(f"/api/campaigns/{campaign.pk}/test_send", {"emails": ["me@example.com"]}, format="json")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "smtp_unavailable" and "refused" in error["message"]
    assert smtp_server.messages == []
