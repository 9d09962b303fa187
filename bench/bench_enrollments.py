"""Enrollments: bulk enroll with and without MX checks, and the enrollment list at depth.

- Enroll a 100,000-contact import (MX off) through the enroll service vs the
  raw `INSERT … SELECT … ON CONFLICT DO NOTHING` that does the same into a
  second campaign. Target: at most 3x.
- The same with MX on: 100,000 contacts over 5,000 distinct domains answered
  by a local DNS responder (one in a hundred domains NXDOMAIN). Target: < 15 s.
- `GET …/enrollments?status=sent` at depth 500,000 of 1,000,000 rows vs the
  first page. Target: within 1.5x.
"""

from __future__ import annotations

import io
import subprocess
import sys

from django.core.cache import cache
from django.db import connection
from django.test import override_settings

from bench.common import Result, median_seconds, timed
from campaigns.models import Campaign
from contacts.importing import ImportRows
from contacts.services import contact_import_create
from core.pagination import encode_cursor
from enrollments.models import Enrollment
from enrollments.services import enrollments_enroll_import

CONTACTS = 100_000
DOMAINS = 5_000
LIST_ROWS = 1_000_000
LIST_DEPTH = 500_000

RAW_ENROLL_SQL = """
INSERT INTO enrollments_enrollment (uuid, campaign_id, contact_id, status, batch_number, created_at, updated_at)
SELECT gen_random_uuid(), %(campaign)s, c.id, 'pending', 1 + (ROW_NUMBER() OVER (ORDER BY c.created_at, c.id) - 1) / 50,
       now(), now()
FROM contacts_contactimportmember m JOIN contacts_contact c ON c.id = m.contact_id
WHERE m.contact_import_id = %(import)s AND c.subscribed
ON CONFLICT (campaign_id, contact_id, round) DO NOTHING
"""


def _campaign(account, name: str, **fields) -> Campaign:
    return Campaign.objects.create(account=account, name=name, **fields)


def _import(account, name: str):
    lines = ["email"] + [f"person{n}@domain{n % DOMAINS}.bench.example.com" for n in range(CONTACTS)]
    data = ("\n".join(lines) + "\n").encode()
    return contact_import_create(account=account, name=name, rows=ImportRows.from_csv(io.BytesIO(data)))


def _enroll_figures(ctx) -> list[Result]:
    account = ctx.fresh_account("bench-enrollments-enroll")
    contact_import = _import(account, "enroll")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
        cursor.execute("ANALYZE contacts_contactimportmember")

    raw_campaign = _campaign(account, "raw")
    raw_seconds, _ = timed(
        lambda: connection.cursor().execute(RAW_ENROLL_SQL, {"campaign": raw_campaign.pk, "import": contact_import.pk})
    )
    assert Enrollment.objects.filter(campaign=raw_campaign).count() == CONTACTS

    service_campaign = _campaign(account, "service")
    seconds, result = timed(
        lambda: enrollments_enroll_import(campaign=service_campaign, contact_import=contact_import, batch_size=50)
    )
    assert result.enrolled == CONTACTS, result.enrolled
    figures = [
        Result(
            "enroll 100k contacts (MX off) vs raw INSERT…SELECT",
            round(seconds, 3),
            "s",
            baseline=round(raw_seconds, 3),
            target="<= 3x",
            ok=seconds <= 3 * raw_seconds,
        )
    ]

    mx_campaign = _campaign(account, "mx", verify_email_mx=True)
    cache.clear()  # every domain resolved afresh

    # The responder runs in its own process, as a real name server would.
    responder = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.dns_responder", "--nxdomain-every", "100"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(responder.stdout.readline())
        with override_settings(DNS_NAMESERVERS=[f"127.0.0.1:{port}"]):
            mx_seconds, mx_result = timed(
                lambda: enrollments_enroll_import(campaign=mx_campaign, contact_import=contact_import, batch_size=50)
            )
    finally:
        responder.stdin.close()
        responder.wait(timeout=10)
    figures.append(
        Result(
            "enroll 100k contacts, MX on, 5,000 domains (local DNS)",
            round(mx_seconds, 3),
            "s",
            target="< 15 s",
            ok=mx_seconds < 15,
            extra={"enrolled": mx_result.enrolled, "skipped_mx_invalid": len(mx_result.skipped)},
        )
    )
    return figures


def _seed_list_campaign(ctx):
    """1,000,000 enrollments (half sent) in one campaign; reused when already there."""
    from accounts.models import Account

    account = Account.objects.filter(name="bench-enrollments-list").first()
    campaign = Campaign.objects.filter(account=account, name="list").first() if account else None
    if campaign and Enrollment.objects.filter(campaign=campaign).count() == LIST_ROWS:
        return account, campaign
    account = ctx.fresh_account("bench-enrollments-list")
    campaign = _campaign(account, "list")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_contact (id, account_id, email, first_name, last_name, company, custom_fields, "
            "subscribed, created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, 'l' || n || '@list.example.com', '', '', '', '{}', true, now(), now() "
            "FROM generate_series(1, %s) n",
            [account.pk, LIST_ROWS],
        )
        cursor.execute(
            "INSERT INTO enrollments_enrollment (uuid, campaign_id, contact_id, status, batch_number, created_at, "
            "updated_at, sent_at) "
            "SELECT gen_random_uuid(), %s, c.id, CASE WHEN n %% 2 = 0 THEN 'sent' ELSE 'pending' END, 1 + n / 5000, "
            "now() - (n || ' seconds')::interval, now(), CASE WHEN n %% 2 = 0 THEN now() END "
            "FROM (SELECT id, row_number() OVER () AS n FROM contacts_contact WHERE account_id = %s) c",
            [campaign.pk, account.pk],
        )
        cursor.execute("ANALYZE enrollments_enrollment")
    return account, campaign


def _list_figure(ctx) -> Result:
    account, campaign = _seed_list_campaign(ctx)
    client = ctx.api_client(account)
    base = f"/api/campaigns/{campaign.pk}/enrollments?status=sent&limit=100"
    # the row at depth 500,000 of the sent enrollments (there are 500,000; take the 499,900th)
    depth = min(LIST_DEPTH, Enrollment.objects.filter(campaign=campaign, status="sent").count()) - 100
    row = (
        Enrollment.objects.filter(campaign=campaign, status="sent")
        .order_by("created_at", "id")
        .values_list("created_at", "id")[depth - 1 : depth]
        .get()
    )
    deep = f"{base}&cursor={encode_cursor(list(row))}"
    assert client.get(deep).status_code == 200
    first_seconds = median_seconds(lambda: client.get(base), repeat=15, warmup=3)
    deep_seconds = median_seconds(lambda: client.get(deep), repeat=15, warmup=3)
    return Result(
        "GET …/enrollments?status=sent at depth 500k of 1M vs first page",
        round(deep_seconds * 1000, 2),
        "ms",
        baseline=round(first_seconds * 1000, 2),
        target="<= 1.5x",
        ok=deep_seconds <= 1.5 * first_seconds,
        extra={"depth": depth},
    )


def run(ctx) -> list:
    return [*_enroll_figures(ctx), _list_figure(ctx)]
