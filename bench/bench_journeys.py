"""Journeys: one enroll call with 1,000 contact addresses and 10 lists of 5,000 members.

The account has a pool of 45,000 contacts (one in a hundred unsubscribed).
Each list takes 5,000 of them, scattered over the first 41,000 with
overlaps between lists (41,000 distinct people in all); of the 1,000
contact addresses, 600 are also list members, 300 are in no list, and 100
match no contact (some are written in capitals or with spaces, which the
enroll normalizes). That is 51,000 entries naming about 41,300 people.

- `journey_enroll` into a fresh journey (normalization, de-duplication,
  the row lock, each person's latest enrollment judged, the insert, the
  answer) vs the raw `INSERT … SELECT` of the same distinct people into
  another fresh journey, in the same run. Target: under 2 s and at most 3x.
  Three rounds, alternating; the medians are reported.
- For information: the same call again, when everyone is already enrolled.
"""

from __future__ import annotations

import statistics

from django.db import connection, transaction

from bench.common import Result, timed
from contacts.models import ContactList
from enrollments.models import Enrollment
from journeys.services import journey_create, journey_enroll, journey_turn_on

POOL = 45_000
LISTS = 10
LIST_SIZE = 5_000
LIST_STRIDE = 4_000  # list i takes pool slots i*4000 … i*4000+4999: each overlaps the next by 1,000
ADDRESSES = 1_000
ROUNDS = 3
ACCOUNT = "bench-journeys"
DOMAIN = "pool.bench.example.com"

# The same people the service enrolls: the named active contacts and the active list members, once each.
RAW_ENROLL_SQL = """
INSERT INTO enrollments_enrollment (uuid, campaign_id, contact_id, status, batch_number, round, created_at, updated_at)
SELECT gen_random_uuid(), %(campaign)s, p.contact_id, 'pending', 1, 1, now(), now()
FROM (
    SELECT c.id AS contact_id FROM contacts_contact c
    WHERE c.account_id = %(account)s AND c.subscribed AND c.email = ANY(%(emails)s)
    UNION
    SELECT c.id FROM contacts_contactlistmember m JOIN contacts_contact c ON c.id = m.contact_id
    WHERE m.contact_list_id = ANY(%(lists)s) AND c.account_id = %(account)s AND c.subscribed
) p
ON CONFLICT (campaign_id, contact_id, round) DO NOTHING
"""


def _slot_email(slot_sql: str) -> str:
    """SQL for the address of pool slot `slot_sql` (0-based): slots are spread over the pool by a stride of 7."""
    return f"'p' || ((({slot_sql}) * 7) %% {POOL} + 1) || '@{DOMAIN}'"


def _purge_lists(account_name: str) -> None:
    # The list members go first, set-based: the account's cascade would walk 50,000 of them one by one,
    # and the contacts they point at are deleted by raw SQL (BenchContext.fresh_account).
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM contacts_contactlistmember m USING contacts_contactlist l, accounts_account a "
            "WHERE m.contact_list_id = l.id AND l.account_id = a.id AND a.name = %s",
            [account_name],
        )


def _seed(ctx):
    _purge_lists(ACCOUNT)
    account = ctx.fresh_account(ACCOUNT)
    lists = [
        ContactList.objects.create(account=account, name=f"List {i}", email_address=f"list{i}@lists.bench.example.com")
        for i in range(LISTS)
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_contact (id, account_id, email, first_name, last_name, company, custom_fields, "
            "subscribed, unsubscribed_at, created_at, updated_at) "
            f"SELECT gen_random_uuid(), %s, 'p' || n || '@{DOMAIN}', 'P' || n, '', '', '{{}}', n %% 100 <> 0, "
            "CASE WHEN n %% 100 = 0 THEN now() END, now(), now() "
            "FROM generate_series(1, %s) n",
            [account.pk, POOL],
        )
        for i, contact_list in enumerate(lists):
            cursor.execute(
                "INSERT INTO contacts_contactlistmember (contact_list_id, contact_id, created_at) "
                "SELECT %s, c.id, now() FROM generate_series(0, %s) k "
                f"JOIN contacts_contact c ON c.account_id = %s AND c.email = {_slot_email('k + %s')}",
                [contact_list.pk, LIST_SIZE - 1, account.pk, i * LIST_STRIDE],
            )
        cursor.execute("ANALYZE contacts_contact")
        cursor.execute("ANALYZE contacts_contactlistmember")
        cursor.execute("ANALYZE enrollments_enrollment")
    in_lists = LIST_STRIDE * (LISTS - 1) + LIST_SIZE  # slots 0 … 40,999
    addresses, not_found = [], 0
    for j in range(ADDRESSES):
        if j < 600:  # list members, spread over every list
            slot = (j * 67) % in_lists
        elif j < 900:  # in no list
            slot = in_lists + (j - 600) * 13
        else:  # no such contact
            addresses.append(f"nobody{j}@{DOMAIN}")
            not_found += 1
            continue
        n = (slot * 7) % POOL + 1
        not_found += n % 100 == 0  # unsubscribed: not found, as the seed says
        email = f"p{n}@{DOMAIN}"
        addresses.append(f"  {email.upper()} " if j % 10 == 0 else email)
    return account, lists, addresses, not_found


def _journey(account, name: str):
    journey = journey_create(
        account=account,
        name=name,
        steps=[{"position": 1, "subject": "Hi", "body_html": "<p>Hi</p>", "delay_minutes": 0}],
        smtp_credentials=[
            {
                "smtp_host": "smtp.bench.example.com",
                "smtp_port": 587,
                "smtp_username": "sender@bench.example.com",
                "smtp_password": "bench-password",
                "daily_limit": 1000,
            }
        ],
    )
    return journey_turn_on(journey=journey)


def _raw(account, lists, addresses) -> tuple[float, int]:
    journey = _journey(account, "raw")
    emails = list(dict.fromkeys(a.strip().lower() for a in addresses))
    params = {"campaign": journey.pk, "account": account.pk, "emails": emails, "lists": [c.pk for c in lists]}

    def insert():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(RAW_ENROLL_SQL, params)

    seconds, _ = timed(insert)
    return seconds, Enrollment.objects.filter(campaign=journey).count()


def run(ctx) -> list:
    account, lists, addresses, not_found = _seed(ctx)
    list_addresses = [c.email_address.upper() for c in lists]  # normalized by the enroll
    raw_samples, samples = [], []
    for attempt in range(ROUNDS):
        raw_seconds, raw_count = _raw(account, lists, addresses)
        journey = _journey(account, f"service {attempt}")
        seconds, result = timed(
            lambda journey=journey: journey_enroll(
                journey=journey, contact_email_addresses=addresses, list_email_addresses=list_addresses
            )
        )
        assert result.enrolled_count == raw_count, (result.enrolled_count, raw_count)
        assert len(result.not_found) == not_found, (len(result.not_found), not_found)
        raw_samples.append(raw_seconds)
        samples.append(seconds)
    again_seconds, again = timed(
        lambda: journey_enroll(journey=journey, contact_email_addresses=addresses, list_email_addresses=list_addresses)
    )
    assert again.enrolled_count == 0 and len(again.already_enrolled) == raw_count

    seconds, raw_seconds = statistics.median(samples), statistics.median(raw_samples)
    return [
        Result(
            "journey enroll: 1,000 addresses + 10 lists x 5,000 (one call) vs raw INSERT…SELECT",
            round(seconds, 3),
            "s",
            baseline=round(raw_seconds, 3),
            target="< 2 s and <= 3x",
            ok=seconds < 2 and seconds <= 3 * raw_seconds,
            extra={
                "enrolled": raw_count,
                "not_found": len(result.not_found),
                "samples": [round(s, 3) for s in samples],
                "raw_samples": [round(s, 3) for s in raw_samples],
            },
        ),
        Result(
            "journey enroll again: everyone already enrolled (judged, nothing inserted)",
            round(again_seconds, 3),
            "s",
            extra={"already_enrolled": len(again.already_enrolled)},
        ),
    ]
