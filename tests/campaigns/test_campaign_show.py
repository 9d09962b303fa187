import datetime

import pytest
from django.utils import timezone

from accounts.models import Account
from enrollments.selectors import campaign_stats

from .factories import (
    CampaignFactory,
    EnrollmentSkipFactory,
    SequenceStepFactory,
    SmtpCredentialFactory,
    enroll,
)

pytestmark = pytest.mark.django_db

STATS_KEYS = {"totals", "rates", "per_batch", "recent_bounces", "credentials", "skipped"}


@pytest.fixture
def seeded(owner):
    """A small campaign whose stats are worked out by hand below."""
    campaign = CampaignFactory(account=owner, name="Seeded")
    SequenceStepFactory(campaign=campaign, position=1)
    SequenceStepFactory(campaign=campaign, position=2, delay_minutes=60)
    a = SmtpCredentialFactory(
        campaign=campaign, label="A", disabled_at=timezone.now(), disabled_reason="Bounce rate 20.0% ≥ 8.0%"
    )
    b = SmtpCredentialFactory(
        campaign=campaign, label="B", imap_host="imap.example.com", imap_username="b", imap_password="imap-SECRET"
    )
    two_days_ago = timezone.now() - datetime.timedelta(days=2)
    # batch 1
    enroll(campaign, "pending")
    enroll(campaign, "pending")
    enroll(campaign, "sent", credential=a)
    enroll(campaign, "sent", credential=a, when=two_days_ago)
    enroll(campaign, "opened", credential=a)
    enroll(campaign, "replied", credential=b)  # replied without a seen open
    bounced_b = enroll(campaign, "bounced", credential=b, bounce_reason="550 no such user")
    # batch 2
    enroll(campaign, "pending", batch=2)
    enroll(campaign, "replied", credential=a, batch=2, opened=True)
    enroll(campaign, "bounced", credential=a, batch=2, sent_at=None, bounce_reason="550 rejected at RCPT")
    EnrollmentSkipFactory(campaign=campaign, kind="mx_invalid")
    EnrollmentSkipFactory(campaign=campaign, kind="mx_invalid")
    EnrollmentSkipFactory(campaign=campaign, kind="cross_campaign_duplicate")
    return {"campaign": campaign, "a": a, "b": b, "bounced_b": bounced_b}


def test_show_returns_the_campaign_fields_steps_credentials_and_stats_keys(api, seeded):
    body = api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()
    assert body["id"] == str(seeded["campaign"].pk)
    assert body["name"] == "Seeded"
    assert body["status"] == "pending"
    assert [s["position"] for s in body["sequence_steps"]] == [1, 2]
    assert [c["label"] for c in body["smtp_credentials"]] == ["A", "B"]
    assert set(body) >= STATS_KEYS
    assert body["created_at"].endswith("Z")


def test_totals_count_enrollments_by_current_status(api, seeded):
    body = api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()
    assert body["totals"] == {"pending": 3, "sent": 2, "opened": 1, "replied": 2, "bounced": 2}


def test_rates_are_per_send_and_per_enrollment_sent_to_with_one_decimal(api, seeded):
    rates = api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()["rates"]
    # 7 messages went out (6 with sent_at, 1 bounced at RCPT); 2 bounced.
    # 6 enrollments were sent to; 2 were ever opened, 2 replied.
    assert rates == {"bounce_rate": 28.6, "open_rate": 33.3, "reply_rate": 33.3}


def test_per_batch_lists_each_batch_with_its_totals(api, seeded):
    per_batch = api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()["per_batch"]
    assert per_batch == [
        {"batch_number": 1, "totals": {"pending": 2, "sent": 2, "opened": 1, "replied": 1, "bounced": 1}},
        {"batch_number": 2, "totals": {"pending": 1, "sent": 0, "opened": 0, "replied": 1, "bounced": 1}},
    ]


def test_recent_bounces_are_newest_first_with_contact_email_and_reason(api, seeded):
    bounces = api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()["recent_bounces"]
    assert [b["reason"] for b in bounces] == ["550 rejected at RCPT", "550 no such user"]
    assert bounces[1]["contact_id"] == str(seeded["bounced_b"].contact_id)
    assert bounces[1]["email"] == seeded["bounced_b"].contact.email
    assert set(bounces[0]) == {"contact_id", "email", "reason", "bounced_at"}


def test_recent_bounces_stop_at_ten(api, owner):
    campaign = CampaignFactory(account=owner)
    for _ in range(12):
        enroll(campaign, "bounced")
    assert len(api.get(f"/api/campaigns/{campaign.pk}").json()["recent_bounces"]) == 10


def test_credentials_report_sent_today_bounce_rate_and_state_without_secrets(api, seeded):
    body = api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()
    a, b = body["credentials"]
    assert a["id"] == str(seeded["a"].pk)
    assert a["mailbox_id"] == str(seeded["a"].mailbox_id)
    assert b["mailbox_id"] == str(seeded["b"].mailbox_id)
    assert (a["sent_today"], a["bounce_rate"], a["imap_configured"]) == (3, 20.0, False)
    assert a["disabled_at"] is not None
    assert a["disabled_reason"].startswith("Bounce rate")
    assert (b["sent_today"], b["bounce_rate"], b["imap_configured"]) == (2, 50.0, True)
    # No other campaign uses these mailboxes: the mailbox's day is this campaign's.
    assert (a["mailbox_sent_today"], b["mailbox_sent_today"]) == (3, 2)
    assert (a["daily_limit"], a["campaign_daily_limit"]) == (200, None)
    assert set(a) == {
        "id",
        "mailbox_id",
        "label",
        "from_email",
        "daily_limit",
        "campaign_daily_limit",
        "sent_today",
        "mailbox_sent_today",
        "bounce_rate",
        "disabled_at",
        "disabled_reason",
        "imap_configured",
        "ready",
        "not_ready_reason",
        "imap_status",
        "imap_last_polled_at",
        "imap_last_error",
        "imap_next_attempt_at",
    }
    text = str(body)
    assert "SECRET" not in text and "smtp-secret-password" not in text
    assert not any("password" in key for c in body["smtp_credentials"] for key in c)


def test_skipped_counts_each_kind(api, seeded):
    skipped = api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()["skipped"]
    assert skipped == {"mx_invalid": 2, "cross_campaign_duplicate": 1, "already_enrolled": 0}


def test_an_empty_campaign_has_zero_stats(api, owner):
    campaign = CampaignFactory(account=owner)
    body = api.get(f"/api/campaigns/{campaign.pk}").json()
    assert body["totals"] == {"pending": 0, "sent": 0, "opened": 0, "replied": 0, "bounced": 0}
    assert body["rates"] == {"bounce_rate": 0.0, "open_rate": 0.0, "reply_rate": 0.0}
    assert body["per_batch"] == [] and body["recent_bounces"] == [] and body["credentials"] == []


def test_sent_today_starts_at_midnight_in_the_accounts_time_zone(owner):
    Account.objects.filter(pk=owner.pk).update(timezone="America/New_York")
    campaign = CampaignFactory(account=Account.objects.get(pk=owner.pk))
    credential = SmtpCredentialFactory(campaign=campaign)
    now = datetime.datetime(2026, 3, 10, 3, 0, tzinfo=datetime.UTC)  # 23:00 on the 9th in New York
    enroll(campaign, "sent", credential=credential, when=now - datetime.timedelta(hours=2))  # 21:00 NY, the 9th
    enroll(campaign, "sent", credential=credential, when=now - datetime.timedelta(hours=5))  # 18:00 NY, the 9th
    enroll(campaign, "sent", credential=credential, when=now - datetime.timedelta(hours=24))  # the 8th
    stats = campaign_stats(campaign=campaign, now=now)
    assert stats["credentials"][0]["sent_today"] == 2


def test_the_number_of_queries_does_not_grow_with_the_campaign(api, owner, seeded, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        assert api.get(f"/api/campaigns/{seeded['campaign'].pk}").status_code == 200
    campaign = seeded["campaign"]
    for batch in range(3, 30):
        enroll(campaign, "sent", credential=seeded["b"], batch=batch)
        enroll(campaign, "bounced", credential=seeded["a"], batch=batch)
    SmtpCredentialFactory(campaign=campaign)
    with django_assert_max_num_queries(10):
        body = api.get(f"/api/campaigns/{campaign.pk}").json()
    assert len(body["per_batch"]) == 29


def test_another_accounts_campaign_is_campaign_not_found(outsider_api, seeded):
    response = outsider_api.get(f"/api/campaigns/{seeded['campaign'].pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"


@pytest.mark.parametrize("bad_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "123"])
def test_an_unknown_or_malformed_id_is_campaign_not_found(api, bad_id):
    response = api.get(f"/api/campaigns/{bad_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"


def test_paths_work_with_and_without_a_trailing_slash(api, seeded):
    assert api.get(f"/api/campaigns/{seeded['campaign'].pk}/").status_code == 200
    assert api.get("/api/campaigns/").status_code == 200


def test_a_failing_imap_mailbox_shows_in_the_credential_stats(api, seeded):
    from inbound.models import ImapSyncState

    retry_at = timezone.now() + datetime.timedelta(minutes=4)
    ImapSyncState.objects.create(
        mailbox=seeded["b"].mailbox,
        last_polled_at=timezone.now(),
        last_error="LOGIN failed: [AUTHENTICATIONFAILED] Authentication failed.",
        last_error_at=timezone.now(),
        consecutive_failures=2,
        next_attempt_at=retry_at,
    )
    credentials = {c["label"]: c for c in api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()["credentials"]}
    assert credentials["A"]["imap_status"] == "not_configured"
    b = credentials["B"]
    assert b["imap_status"] == "failing"
    assert "AUTHENTICATIONFAILED" in b["imap_last_error"]
    assert b["imap_next_attempt_at"].startswith(retry_at.strftime("%Y-%m-%dT%H:%M"))


def test_a_configured_mailbox_not_yet_polled_says_so(api, seeded):
    credentials = {c["label"]: c for c in api.get(f"/api/campaigns/{seeded['campaign'].pk}").json()["credentials"]}
    assert credentials["B"]["imap_status"] == "never_polled"
    assert credentials["B"]["imap_last_error"] is None
