"""Dispatch through the HTTP API: the response, the plan it writes, and every refusal."""

import datetime
import itertools

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from campaigns.models import Campaign
from enrollments.models import Enrollment
from mailboxes.models import Mailbox
from mailing.models import AccountMonth, ScheduledSend
from tests.servers.dns_responder import DnsResponder

from .conftest import enroll_contacts, make_campaign

pytestmark = pytest.mark.django_db


def _dispatch(api, campaign, body=None):
    return api.post(f"/api/campaigns/{campaign.pk}/dispatch", body or {}, format="json")


def _step1(campaign):
    return list(ScheduledSend.objects.filter(campaign=campaign, step__position=1).order_by("send_at"))


def test_dispatch_answers_the_documented_shape_and_activates_the_campaign(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, steps=((0,), (4320,), (1440,)))
    enroll_contacts(campaign, 4)
    assert campaign.status == Campaign.Status.PENDING

    body = _dispatch(api, campaign).json()

    assert set(body) == {"batch_number", "scheduled", "sends", "first_send_at", "last_send_at", "by_day"}
    assert body["batch_number"] == 1 and body["scheduled"] == 4 and body["sends"] == 12
    assert body["by_day"] == [{"date": timezone.localdate().isoformat(), "count": 4}]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ACTIVE and campaign.activated_at is not None


def test_later_steps_follow_step_one_by_the_cumulative_delays(api, owner, smtp_server):
    campaign = make_campaign(
        owner, smtp_server, steps=((0,), (4320,), (1440,)), min_wait_seconds=30, max_wait_seconds=60
    )
    enroll_contacts(campaign, 5)
    _dispatch(api, campaign)
    for enrollment in Enrollment.objects.filter(campaign=campaign):
        times = [s.send_at for s in ScheduledSend.objects.filter(enrollment=enrollment).order_by("step__position")]
        assert times[1] - times[0] == datetime.timedelta(minutes=4320)
        assert times[2] - times[0] == datetime.timedelta(minutes=4320 + 1440)


def test_jitter_gaps_between_first_messages_stay_within_the_campaign_bounds(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, min_wait_seconds=120, max_wait_seconds=420)
    enroll_contacts(campaign, 40)
    before = timezone.now()
    body = _dispatch(api, campaign).json()
    times = [s.send_at for s in _step1(campaign)]
    assert before <= times[0] <= timezone.now()  # the first one goes now
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(120 - 0.001 <= gap <= 420 + 0.001 for gap in gaps), gaps
    assert len({round(g) for g in gaps}) > 5  # random, not a constant step
    assert body["first_send_at"] is not None


def test_credentials_take_turns_and_each_stays_within_its_daily_limit_rolling_the_rest(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, credentials=2, daily_limit=3)
    enroll_contacts(campaign, 10)
    body = _dispatch(api, campaign).json()

    today = timezone.localdate()
    assert body["by_day"] == [
        {"date": today.isoformat(), "count": 6},
        {"date": (today + datetime.timedelta(days=1)).isoformat(), "count": 4},
    ]
    rows = _step1(campaign)
    credentials = [r.smtp_credential_id for r in rows]
    first, second = credentials[0], credentials[1]
    assert first != second and credentials[:6] == [first, second] * 3  # round-robin
    for day in (today, today + datetime.timedelta(days=1)):
        per_credential = {}
        for row in rows:
            if timezone.localdate(row.send_at) == day:
                per_credential[row.smtp_credential_id] = per_credential.get(row.smtp_credential_id, 0) + 1
        assert max(per_credential.values()) <= 3
    tomorrow_start = timezone.make_aware(datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time()))
    assert rows[6].send_at == tomorrow_start  # the rollover starts at the next local midnight


def test_a_second_dispatch_the_same_day_uses_what_is_left_of_today(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, daily_limit=5)
    enroll_contacts(campaign, 3, batch=1)
    enroll_contacts(campaign, 0)
    from tests.campaigns.factories import EnrollmentFactory
    from tests.factories import ContactFactory

    for i in range(4):
        EnrollmentFactory(
            campaign=campaign, batch_number=2, contact=ContactFactory(account=owner, email=f"b2-{i}@example.com")
        )
    assert _dispatch(api, campaign, {"batch_number": 1}).json()["by_day"][0]["count"] == 3
    body = _dispatch(api, campaign).json()  # omitted: the lowest batch still pending, 2
    assert body["batch_number"] == 2
    assert [d["count"] for d in body["by_day"]] == [2, 2]


def test_dispatch_refuses_when_every_credential_is_at_its_limit(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, daily_limit=2)
    enroll_contacts(campaign, 2, batch=1)
    _dispatch(api, campaign, {"batch_number": 1})
    from tests.campaigns.factories import EnrollmentFactory
    from tests.factories import ContactFactory

    EnrollmentFactory(campaign=campaign, batch_number=2, contact=ContactFactory(account=owner))
    response = _dispatch(api, campaign, {"batch_number": 2})
    assert response.status_code == 422 and response.json()["error"]["code"] == "no_capacity"


def test_dispatch_refuses_when_every_mailbox_is_disabled(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, credentials=2)
    Mailbox.objects.filter(credentials__campaign=campaign).update(disabled_at=timezone.now())
    enroll_contacts(campaign, 1)
    response = _dispatch(api, campaign)
    assert response.status_code == 422 and response.json()["error"]["code"] == "no_capacity"
    assert not ScheduledSend.objects.exists()


def test_dispatch_refuses_a_paused_campaign(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, status=Campaign.Status.PAUSED)
    enroll_contacts(campaign, 1)
    response = _dispatch(api, campaign)
    assert response.status_code == 422 and response.json()["error"]["code"] == "campaign_not_active"


def test_dispatch_refuses_with_nothing_pending(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    response = _dispatch(api, campaign)
    assert response.status_code == 422 and response.json()["error"]["code"] == "no_pending_enrollments"
    enroll_contacts(campaign, 1)
    assert _dispatch(api, campaign).status_code == 200
    response = _dispatch(api, campaign)  # already dispatched: nothing left
    assert response.json()["error"]["code"] == "no_pending_enrollments"
    assert _dispatch(api, campaign, {"batch_number": 7}).json()["error"]["code"] == "no_pending_enrollments"


def test_dispatch_refuses_a_campaign_without_credentials_or_steps(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, credentials=0)
    enroll_contacts(campaign, 1)
    response = _dispatch(api, campaign)
    assert response.status_code == 422 and response.json()["error"]["code"] == "campaign_incomplete"
    no_steps = make_campaign(owner, smtp_server, steps=())
    response = _dispatch(api, no_steps)
    assert response.json()["error"]["code"] == "campaign_incomplete"


def test_dispatch_refuses_an_account_at_its_plan_limit(api, owner, smtp_server):
    owner.monthly_limit = 10
    owner.save()
    AccountMonth.objects.create(account=owner, month=timezone.localdate().replace(day=1), reserved=10)
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 1)
    response = _dispatch(api, campaign)
    assert response.status_code == 402 and response.json()["error"]["code"] == "plan_limit_reached"
    assert not ScheduledSend.objects.exists()


def test_another_accounts_campaign_is_not_found(outsider_api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    enroll_contacts(campaign, 1)
    for path in ("dispatch", "pause", "resume", "test_send"):
        response = outsider_api.post(f"/api/campaigns/{campaign.pk}/{path}", {}, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "campaign_not_found"
    assert outsider_api.get(f"/api/campaigns/{campaign.pk}/send_forecast").status_code == 404
    assert outsider_api.post("/api/campaigns/not-a-uuid/dispatch/", {}, format="json").status_code == 404


def test_dispatch_validates_its_body(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server)
    response = _dispatch(api, campaign, {"batch_number": "x"})
    assert response.status_code == 422 and set(response.json()["error"]["details"]) == {"batch_number"}
    response = _dispatch(api, campaign, {"batch": 1})
    assert response.status_code == 422 and set(response.json()["error"]["details"]) == {"batch"}


def test_mx_is_checked_at_dispatch_and_domains_without_mx_are_bounced_without_sends(api, owner, smtp_server):
    campaign = make_campaign(owner, smtp_server, verify_email_mx=True)
    good = enroll_contacts(campaign, 2, domain="mail-ok.test")
    bad = enroll_contacts(campaign, 1, domain="no-mail.test")
    cache.clear()
    rules = {"mail-ok.test": "mx", "no-mail.test": "nxdomain"}
    with DnsResponder(lambda d: rules.get(d, "nxdomain")) as dns, override_settings(DNS_NAMESERVERS=[dns.nameserver]):
        body = _dispatch(api, campaign).json()
    assert body["scheduled"] == 2
    bounced = Enrollment.objects.get(pk=bad[0].pk)
    assert bounced.status == "bounced" and bounced.bounce_reason.startswith("mx_invalid")
    assert not ScheduledSend.objects.filter(enrollment=bounced).exists()
    assert ScheduledSend.objects.filter(enrollment_id__in=[e.pk for e in good]).count() == 2


def test_dispatch_stays_an_index_lookup_when_statistics_say_the_sends_table_is_empty(api, owner, smtp_server):
    """A table analyzed empty and then filled (a purge, then another campaign's big dispatch, before
    autovacuum analyzes it again) once made dispatch compare every enrollment with every send."""
    other = make_campaign(owner, smtp_server, steps=tuple((1440 * n,) for n in range(8)))
    campaign = make_campaign(owner, smtp_server, daily_limit=5000)
    seed = """
        INSERT INTO contacts_contact (id, account_id, email, first_name, last_name, company, custom_fields,
                                      subscribed, created_at, updated_at)
        SELECT gen_random_uuid(), %(account)s, 's' || n || '@stale.example.com', '', '', '', '{}', true, now(), now()
        FROM generate_series(1, 3000) AS n;
        INSERT INTO enrollments_enrollment (uuid, campaign_id, contact_id, status, batch_number, created_at, updated_at)
        SELECT gen_random_uuid(), k.id, c.id, 'pending', 1, now(), now()
        FROM contacts_contact c CROSS JOIN campaigns_campaign k WHERE c.account_id = %(account)s
          AND k.id IN (%(other)s, %(campaign)s);
    """
    other_sends = """
        INSERT INTO mailing_scheduledsend (id, campaign_id, enrollment_id, step_id, smtp_credential_id, status,
            send_at, attempts, last_error, claimed_by, created_at, updated_at)
        SELECT gen_random_uuid(), e.campaign_id, e.id, s.id, NULL, 'scheduled', now(), 0, '', '', now(), now()
        FROM enrollments_enrollment e JOIN campaigns_sequencestep s ON s.campaign_id = e.campaign_id
        WHERE e.campaign_id = %(other)s
    """
    ids = {"account": owner.pk, "other": other.pk, "campaign": campaign.pk}
    with connection.cursor() as cursor:
        cursor.execute(seed, ids)
        cursor.execute(other_sends, ids)
        cursor.execute("DELETE FROM mailing_scheduledsend")
        cursor.execute("ANALYZE mailing_scheduledsend")  # pages, but no live row
        cursor.execute(other_sends, ids)  # 24,000 sends the statistics do not know of
        cursor.execute("SET LOCAL statement_timeout = '5s'")  # the scan took minutes; the lookups take ms

    body = _dispatch(api, campaign).json()

    assert body["scheduled"] == 3000 and body["sends"] == 3000
