# ruff: noqa: F811 (pytest fixtures imported from tests.mailing.conftest are parameters here)
"""One mailbox shared by several campaigns: one daily limit, one IMAP poll, one health (issue 15).

Real SMTP (aiosmtpd) and IMAP (Dovecot) servers; the pipeline driven as
beat and the workers drive it (`run_until_idle`).
"""

import datetime

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from enrollments.models import Enrollment
from inbound.imap import mailboxes_due_for_poll
from inbound.tasks import poll_imap_mailboxes_task
from mailboxes.models import Mailbox, MailboxDay
from mailing.models import ScheduledSend
from tests.campaigns.factories import SequenceStepFactory, SmtpCredentialFactory
from tests.inbound.conftest import dovecot, eager_tasks  # noqa: F401
from tests.inbound.dovecot import PASSWORD, USER
from tests.inbound.mail import reply
from tests.mailboxes.factories import MailboxFactory
from tests.mailing.conftest import dispatch, enroll_contacts, run_until_idle, smtp_server  # noqa: F401
from webhooks.models import WebhookEvent


def shared_mailbox(owner, server, **fields) -> Mailbox:
    return MailboxFactory(account=owner, smtp_host="127.0.0.1", smtp_port=server.port, smtp_security="none", **fields)


def campaign_on(owner, mailbox, name, *, steps=1, campaign_daily_limit=None, **options) -> Campaign:
    options = {"min_wait_seconds": 0, "max_wait_seconds": 0, **options}
    campaign = Campaign.objects.create(account=owner, name=name, **options)
    for position in range(1, steps + 1):
        SequenceStepFactory(campaign=campaign, position=position, delay_minutes=0 if position == 1 else 60)
    SmtpCredentialFactory(campaign=campaign, mailbox=mailbox, campaign_daily_limit=campaign_daily_limit)
    return campaign


def first_messages_today(api, mailbox) -> int:
    return api.get(f"/api/mailboxes/{mailbox.pk}").json()["forecast"][0]["first_messages"]


def campaign_today(api, campaign) -> int:
    response = api.get(f"/api/campaigns/{campaign.pk}/send_forecast", {"days": 1})
    assert response.status_code == 200, response.content
    return response.json()[0]["total"]


@pytest.mark.django_db(transaction=True)
def test_two_campaigns_sharing_a_mailbox_of_ten_a_day_send_exactly_ten_today_and_roll_the_rest(
    api,
    owner,
    smtp_server,
):
    mailbox = shared_mailbox(owner, smtp_server, daily_limit=10)
    first = campaign_on(owner, mailbox, "First")
    second = campaign_on(owner, mailbox, "Second")
    enroll_contacts(first, 4)
    enroll_contacts(second, 26)

    first_plan, second_plan = dispatch(api, first), dispatch(api, second)

    # The plans add up to the mailbox's limit today, the second campaign taking what the first left
    # and rolling the rest to the next days, at most ten a day.
    assert [d["count"] for d in first_plan["by_day"]] == [4]
    assert [d["count"] for d in second_plan["by_day"]] == [6, 10, 10]
    assert second_plan["by_day"][0]["date"] == first_plan["by_day"][0]["date"]
    assert campaign_today(api, first) + campaign_today(api, second) == 10
    assert first_messages_today(api, mailbox) == 10
    # A third campaign finds nothing left today: refused, as the seed documents, naming the limit.
    third = campaign_on(owner, mailbox, "Third")
    enroll_contacts(third, 1)
    refused = api.post(f"/api/campaigns/{third.pk}/dispatch", {}, format="json")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "no_capacity"

    run_until_idle(now=timezone.now() + datetime.timedelta(minutes=1))
    assert len(smtp_server.messages) == 10
    assert Enrollment.objects.filter(campaign__in=[first, second], status="sent").count() == 10
    assert ScheduledSend.objects.filter(campaign__in=[first, second], status="scheduled").count() == 20
    today = MailboxDay.objects.get(mailbox=mailbox, day=timezone.localdate())
    assert (today.reserved, today.sent) == (10, 10)


@pytest.mark.django_db(transaction=True)
def test_the_limit_is_held_at_send_time_across_campaigns_when_it_is_lowered_after_dispatch(
    api,
    owner,
    smtp_server,
):
    mailbox = shared_mailbox(owner, smtp_server, daily_limit=30)
    first, second = campaign_on(owner, mailbox, "First"), campaign_on(owner, mailbox, "Second")
    enroll_contacts(first, 12)
    enroll_contacts(second, 12)
    dispatch(api, first)
    dispatch(api, second)  # 24 planned for today under a limit of 30
    assert api.patch(f"/api/mailboxes/{mailbox.pk}", {"daily_limit": 7}, format="json").status_code == 200

    run_until_idle(now=timezone.now() + datetime.timedelta(minutes=1))

    assert len(smtp_server.messages) == 7
    assert MailboxDay.objects.get(mailbox=mailbox, day=timezone.localdate()).reserved == 7
    assert ScheduledSend.objects.filter(campaign__in=[first, second], status="sent").count() == 7


@pytest.mark.django_db(transaction=True)
def test_a_campaign_cap_keeps_its_share_of_a_shared_mailbox_below_the_mailbox_limit(
    api,
    owner,
    smtp_server,
):
    mailbox = shared_mailbox(owner, smtp_server, daily_limit=10)
    capped = campaign_on(owner, mailbox, "Capped", campaign_daily_limit=3)
    other = campaign_on(owner, mailbox, "Other")
    enroll_contacts(capped, 8)
    enroll_contacts(other, 8)
    dispatch(api, capped)
    dispatch(api, other)

    assert campaign_today(api, capped) == 3
    assert campaign_today(api, other) == 7
    run_until_idle(now=timezone.now() + datetime.timedelta(minutes=1))
    assert Enrollment.objects.filter(campaign=capped, status="sent").count() == 3
    assert Enrollment.objects.filter(campaign=other, status="sent").count() == 7


@pytest.mark.django_db(transaction=True)
def test_a_bounce_rate_breach_in_one_campaign_stops_the_mailbox_in_the_other(api, owner, smtp_server):
    mailbox = shared_mailbox(owner, smtp_server, daily_limit=500)
    strict = campaign_on(owner, mailbox, "Strict", bounce_rate_threshold=10.0)
    relaxed = campaign_on(owner, mailbox, "Relaxed", bounce_rate_threshold=50.0)
    enroll_contacts(strict, 20)
    enroll_contacts(relaxed, 5)
    dispatch(api, relaxed)
    tomorrow = timezone.now() + datetime.timedelta(days=1)
    ScheduledSend.objects.filter(campaign=relaxed).update(send_at=tomorrow)  # after the strict campaign's
    dispatch(api, strict)
    # 2 of 20 bounce (10%, the strict campaign's threshold): the 19th and 20th in the worker's order, so
    # the guard, which looks from 20 messages on, judges at the second bounce.
    rows = list(ScheduledSend.objects.filter(campaign=strict).order_by("send_at", "id"))
    for row in rows[18:20]:
        smtp_server.reject.add(row.enrollment.contact.email)
    run_until_idle(now=timezone.now() + datetime.timedelta(minutes=1))

    shown = api.get(f"/api/mailboxes/{mailbox.pk}").json()
    assert shown["disabled_at"] is not None
    assert shown["disabled_reason"].startswith('Bounce rate 10.0% (2 of 20 messages) of campaign "Strict"')
    assert WebhookEvent.objects.filter(type="mailbox.disabled", data__id=str(mailbox.pk)).exists()
    assert WebhookEvent.objects.filter(
        type="smtp_credential.disabled", data__campaign_id=str(relaxed.pk), data__mailbox_id=str(mailbox.pk)
    ).exists()

    # The other campaign sends nothing through it now: its sends wait for the mailbox, and a new
    # dispatch is refused.
    delivered = len(smtp_server.messages)
    run_until_idle(now=tomorrow + datetime.timedelta(minutes=1))
    assert len(smtp_server.messages) == delivered
    assert Enrollment.objects.filter(campaign=relaxed, status="sent").count() == 0
    assert ScheduledSend.objects.filter(campaign=relaxed, status="scheduled").count() == 5
    enroll_contacts(relaxed, 1, batch=2, domain="late.example.com")
    refused = api.post(f"/api/campaigns/{relaxed.pk}/dispatch", {}, format="json")
    assert refused.status_code == 422
    assert refused.json()["error"] == {
        "code": "no_capacity",
        "message": "Every mailbox of the campaign is disabled.",
        "details": {},
    }

    # Re-enabling it from the other campaign's credential re-enables it everywhere.
    credential = relaxed.smtp_credentials.get()
    response = api.post(f"/api/campaigns/{relaxed.pk}/smtp_credentials/{credential.pk}/reenable")
    assert response.status_code == 200 and response.json()["disabled_at"] is None
    assert api.get(f"/api/campaigns/{strict.pk}").json()["smtp_credentials"][0]["disabled_at"] is None
    run_until_idle(now=tomorrow + datetime.timedelta(minutes=1))
    assert Enrollment.objects.filter(campaign=relaxed, batch_number=1, status="sent").count() == 5


@pytest.mark.django_db(transaction=True)
def test_one_imap_poll_per_mailbox_matches_replies_for_every_campaign_using_it(
    api,
    owner,
    smtp_server,
    dovecot,
    eager_tasks,
):
    mailbox = shared_mailbox(
        owner, smtp_server, imap_host="127.0.0.1", imap_port=dovecot.port, imap_username=USER, imap_password=PASSWORD
    )
    campaigns = [campaign_on(owner, mailbox, f"Campaign {i}", steps=2) for i in range(3)]
    enrollments = {c.pk: enroll_contacts(c, 1)[0] for c in campaigns}
    for campaign in campaigns:
        dispatch(api, campaign)
    run_until_idle(now=timezone.now() + datetime.timedelta(minutes=1))
    assert len(smtp_server.messages) == 3

    assert list(mailboxes_due_for_poll()) == [mailbox]
    # The third campaign's contact answers by headers, the second's from a new thread (by sender).
    third_send = ScheduledSend.objects.get(campaign=campaigns[2], step__position=1)
    dovecot.deliver(reply(enrollments[campaigns[2].pk].contact.email, in_reply_to=third_send.message_id))
    dovecot.deliver(reply(enrollments[campaigns[1].pk].contact.email, subject="A question"))

    assert poll_imap_mailboxes_task() == 1  # one poll, whatever the number of campaigns

    statuses = {c.name: Enrollment.objects.get(pk=enrollments[c.pk].pk).status for c in campaigns}
    assert statuses == {"Campaign 0": "sent", "Campaign 1": "replied", "Campaign 2": "replied"}
    # Their follow-ups are canceled; the silent one's still goes out.
    assert ScheduledSend.objects.get(campaign=campaigns[1], step__position=2).status == "canceled"
    assert ScheduledSend.objects.get(campaign=campaigns[0], step__position=2).status == "scheduled"


@pytest.mark.django_db
def test_with_real_waits_no_day_is_planned_past_the_mailbox_limit(api, owner, smtp_server):
    # Waits of 2 to 7 minutes: a day's chain of sends can run past midnight unless each day takes only
    # what surely fits before it; the sends that spilled over used to be counted on the wrong day.
    mailbox = shared_mailbox(owner, smtp_server, daily_limit=100)
    first = campaign_on(owner, mailbox, "First", min_wait_seconds=120, max_wait_seconds=420)
    second = campaign_on(owner, mailbox, "Second", min_wait_seconds=120, max_wait_seconds=420)
    enroll_contacts(first, 250)
    enroll_contacts(second, 250)

    dispatch(api, first)
    dispatch(api, second)

    forecast = api.get(f"/api/mailboxes/{mailbox.pk}").json()["forecast"]
    assert sum(day["first_messages"] for day in forecast) == 500
    assert max(day["first_messages"] for day in forecast) <= 100
    assert [day["first_messages"] for day in forecast[1:5]] == [100, 100, 100, 100]  # full days stay full


@pytest.mark.django_db
def test_overdue_first_messages_of_a_paused_campaign_hold_todays_room(api, owner, smtp_server):
    mailbox = shared_mailbox(owner, smtp_server, daily_limit=10)
    paused, other = campaign_on(owner, mailbox, "Paused"), campaign_on(owner, mailbox, "Other")
    enroll_contacts(paused, 5)
    enroll_contacts(other, 10)
    dispatch(api, paused)
    assert api.post(f"/api/campaigns/{paused.pk}/pause").status_code == 200
    yesterday = timezone.now() - datetime.timedelta(days=1)
    ScheduledSend.objects.filter(campaign=paused).update(send_at=yesterday)  # due while it was paused

    plan = dispatch(api, other)

    assert plan["by_day"][0]["count"] == 5
    assert [day["first_messages"] for day in api.get(f"/api/mailboxes/{mailbox.pk}").json()["forecast"][:2]] == [
        10,
        5,
    ]
