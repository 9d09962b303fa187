"""GET /api/campaigns/:id on a campaign with 1,000,000 enrollments across 200 batches.

Targets (issue 3): median under 150 ms, and within 3x of the raw SQL it
needs, measured in the same run. The baseline replays, through a bare
cursor, exactly the statements one request issues (auth, campaign, steps,
credentials, the stats), so the ratio is the cost of Django, DRF and
serialization on top of the database work. For scale, the run also times the
direct aggregate over the enrollments that the trigger-kept tally replaces.

The seed (1M contacts and enrollments, set-based INSERT … SELECT) takes a
couple of minutes; it is kept between runs and reused when it is complete.
"""

from __future__ import annotations

import statistics
import time

from bench.common import Result

ACCOUNT_NAME = "bench-campaigns"
CAMPAIGN_NAME = "Bench 1M enrollments"
ENROLLMENTS = 1_000_000
BATCHES = 200
CREDENTIALS = 3
REQUESTS = 31


def _seed(ctx):
    """The account and its campaign, seeded unless a complete seed is already there."""
    from django.db import connection

    from campaigns.models import Campaign, SequenceStep, SmtpCredential
    from enrollments.models import Enrollment
    from mailboxes.models import Mailbox

    campaign = Campaign.objects.filter(account__name=ACCOUNT_NAME, name=CAMPAIGN_NAME).first()
    if campaign and Enrollment.objects.filter(campaign=campaign).count() == ENROLLMENTS:
        return campaign, False

    account = ctx.fresh_account(ACCOUNT_NAME)  # an incomplete seed is deleted set-based first
    campaign = Campaign.objects.create(account=account, name=CAMPAIGN_NAME, status=Campaign.Status.ACTIVE)
    SequenceStep.objects.create(campaign=campaign, position=1, subject="Hi {{first_name|there}}", body_html="<p>1</p>")
    SequenceStep.objects.create(campaign=campaign, position=2, subject="Re: Hi", body_html="<p>2</p>", delay_minutes=60)
    credentials = [
        SmtpCredential.objects.create(
            campaign=campaign,
            label=f"Mailbox {i}",
            mailbox=Mailbox.objects.create(
                account=account,
                email=f"sender{i}@example.com",
                smtp_host="smtp.example.com",
                smtp_port=587,
                smtp_username=f"sender{i}@example.com",
                smtp_security="starttls",
                smtp_password="bench-password",  # noqa: S106 (a fake mailbox of the seed)
                daily_limit=100_000,
            ),
        )
        for i in range(CREDENTIALS)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact (id, account_id, email, first_name, last_name, company, custom_fields,
                                          subscribed, created_at, updated_at)
            SELECT gen_random_uuid(), %s, 'p' || g || '@bench.example.com', '', '', '', '{}', true, now(), now()
            FROM generate_series(1, %s) g
            """,
            [account.pk, ENROLLMENTS],
        )
        # Status by position: 40% pending, 30% sent, 15% opened, 5% replied, 10% bounced; sends spread
        # over 30 days, credentials in rotation.
        cursor.execute(
            """
            INSERT INTO enrollments_enrollment (uuid, campaign_id, contact_id, smtp_credential_id, status,
                batch_number, created_at, sent_at, opened_at, replied_at, bounced_at, bounce_reason, updated_at)
            SELECT gen_random_uuid(), %(campaign)s, c.id,
                CASE WHEN s.st = 'pending' THEN NULL ELSE (%(credentials)s::uuid[])[1 + c.n %% 3] END,
                s.st, 1 + (c.n %% %(batches)s), now() - interval '40 days',
                CASE WHEN s.st <> 'pending' THEN now() - (c.n %% 30) * interval '1 day' END,
                CASE WHEN s.st IN ('opened', 'replied') OR (s.st = 'bounced' AND c.n %% 2 = 0)
                     THEN now() - (c.n %% 29) * interval '1 day' END,
                CASE WHEN s.st = 'replied' THEN now() - (c.n %% 28) * interval '1 day' END,
                CASE WHEN s.st = 'bounced' THEN now() - (c.n %% 30) * interval '1 day' END,
                CASE WHEN s.st = 'bounced' THEN '550 5.1.1 mailbox unavailable' END,
                now()
            FROM (SELECT id, row_number() OVER (ORDER BY email) AS n
                  FROM contacts_contact WHERE account_id = %(account)s) c
            CROSS JOIN LATERAL (SELECT CASE WHEN c.n %% 20 < 8 THEN 'pending' WHEN c.n %% 20 < 14 THEN 'sent'
                                            WHEN c.n %% 20 < 17 THEN 'opened' WHEN c.n %% 20 < 18 THEN 'replied'
                                            ELSE 'bounced' END AS st) s
            """,
            {
                "campaign": campaign.pk,
                "account": account.pk,
                "credentials": [c.pk for c in credentials],
                "batches": BATCHES,
            },
        )
        cursor.execute(
            """
            INSERT INTO enrollments_enrollmentskip (id, campaign_id, contact_id, email, kind, reason, created_at)
            SELECT gen_random_uuid(), %s, NULL, 'skip' || g || '@bench.example.com',
                   (ARRAY['mx_invalid', 'cross_campaign_duplicate', 'already_enrolled'])[1 + g %% 3], '', now()
            FROM generate_series(1, 5000) g
            """,
            [campaign.pk],
        )
        for table in ("contacts_contact", "enrollments_enrollment", "enrollments_enrollmenttally"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return campaign, True


def _direct_aggregate_seconds(campaign_id) -> float:
    """The stats' counts aggregated straight from the enrollments (what the tally saves)."""
    from django.db import connection

    sql = """
        SELECT batch_number, status, smtp_credential_id, count(*),
               count(*) FILTER (WHERE sent_at IS NOT NULL), count(*) FILTER (WHERE opened_at IS NOT NULL),
               count(*) FILTER (WHERE replied_at IS NOT NULL)
        FROM enrollments_enrollment WHERE campaign_id = %s GROUP BY 1, 2, 3
    """
    samples = []
    with connection.cursor() as cursor:
        for _ in range(3):
            start = time.perf_counter()
            cursor.execute(sql, [campaign_id])
            cursor.fetchall()
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(ctx) -> list[Result]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from enrollments.selectors import campaign_tally, campaign_tally_from_enrollments

    started = time.perf_counter()
    campaign, seeded = _seed(ctx)
    seed_seconds = round(time.perf_counter() - started, 1)
    client = ctx.api_client(campaign.account)
    url = f"/api/campaigns/{campaign.pk}"

    def request():
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        return response

    for _ in range(2):  # warm-up: connection, caches, last_used_at write
        body = request().json()
    with CaptureQueriesContext(connection) as captured:
        request()
    statements = [q["sql"] for q in captured.captured_queries]

    def raw():
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
                if cursor.description:
                    cursor.fetchall()

    # Request and raw replay alternate, so both see the same load on the machine.
    raw()
    samples, raw_samples = [], []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        request()
        samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        raw()
        raw_samples.append(time.perf_counter() - start)
    api_median = statistics.median(samples)
    raw_median = statistics.median(raw_samples)

    direct = _direct_aggregate_seconds(campaign.pk)
    tally_exact = campaign_tally(campaign_id=campaign.pk) == campaign_tally_from_enrollments(campaign_id=campaign.pk)
    total = sum(body["totals"].values())
    ms = round(api_median * 1000, 1)
    return [
        Result(
            "GET /api/campaigns/:id, 1M enrollments, 200 batches (median)",
            ms,
            "ms",
            baseline=round(raw_median * 1000, 1),
            target="< 150 ms and <= 3x the raw SQL",
            ok=api_median < 0.150 and api_median <= 3 * raw_median and total == ENROLLMENTS and tally_exact,
            extra={
                "queries_per_request": len(statements),
                "requests": REQUESTS,
                "p90_ms": round(sorted(samples)[int(0.9 * (len(samples) - 1))] * 1000, 1),
                "direct_aggregate_over_enrollments_ms": round(direct * 1000, 1),
                "tally_matches_enrollments": tally_exact,
                "per_batch_entries": len(body["per_batch"]),
                "seeded_now": seeded,
                "seed_or_check_seconds": seed_seconds,
            },
        )
    ]
