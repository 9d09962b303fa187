"""Reads over enrollments: the campaign stats object.

The stats of the campaign show endpoint live here, beside the enrollments
(DESIGN.md). They cost the same five queries whatever the campaign's size:
counts come from `EnrollmentTally` (kept exact by triggers, see
`enrollments.models`), `sent_today` from a range scan over today's sends,
recent bounces from the top of an index, skips from a grouped count.

Definitions, in this one place:
- messages sent: every message handed to a server, all steps, as the sending
  engine counts them per credential (`messages_by_credential`, passed by the
  show endpoint); never less than the enrollments with `sent_at` set plus
  bounced ones (a bounce proves a message went out, even when the 5xx came
  before `sent_at` was stamped). The bounce-rate guard uses the same counts.
- `bounce_rate`: bounced / messages sent (per send, SMTP2GO's denominator).
- `open_rate`, `reply_rate`: enrollments ever opened / ever replied, over
  enrollments sent to (`sent_at` set).
- rates are percentages with one decimal; 0.0 when nothing was sent.
- `credentials[].sent_today`: enrollments whose first message went out
  through the credential since midnight in the account's time zone;
  `credentials[].bounce_rate`: as above, per credential.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Least
from django.utils import timezone

from accounts.models import Account
from accounts.timezones import account_zone, local_day
from accounts.timezones import day_start as local_day_start
from campaigns.models import Campaign, SmtpCredential

from .models import NO_CREDENTIAL, Enrollment, EnrollmentSkip, EnrollmentTally

STATUSES = [s.value for s in Enrollment.Status]
SKIP_KINDS = [k.value for k in EnrollmentSkip.Kind]
RECENT_BOUNCES = 10


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


# The two tally reads are plain SQL: built by the ORM, their dozen filtered
# sums cost more Python time to compile than PostgreSQL takes to run them.
# Both read a few hundred rows through the tally's unique index.
_BY_BATCH_SQL = (
    "SELECT batch_number, "
    + ", ".join("CAST(SUM(n) FILTER (WHERE status = %s) AS bigint)" for _ in STATUSES)
    + ", CAST(SUM(n) FILTER (WHERE has_sent) AS bigint)"
    ", CAST(SUM(n) FILTER (WHERE has_opened) AS bigint)"
    ", CAST(SUM(n) FILTER (WHERE has_replied) AS bigint)"
    " FROM enrollments_enrollmenttally WHERE campaign_id = %s GROUP BY batch_number ORDER BY batch_number"
)
_BY_CREDENTIAL_SQL = (
    "SELECT smtp_credential_id, CAST(SUM(n) AS bigint)"
    ", CAST(SUM(n) FILTER (WHERE status = %s) AS bigint)"
    ", CAST(SUM(n) FILTER (WHERE status = %s AND NOT has_sent) AS bigint)"
    " FROM enrollments_enrollmenttally WHERE campaign_id = %s AND (has_sent OR status = %s)"
    " GROUP BY smtp_credential_id"
)
_TALLY_CAMPAIGN = EnrollmentTally._meta.get_field("campaign_id")
_TALLY_CREDENTIAL = EnrollmentTally._meta.get_field("smtp_credential_id")
BOUNCED = Enrollment.Status.BOUNCED.value


def _zero_totals() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


def campaign_stats(
    *,
    campaign: Campaign,
    credentials: list[SmtpCredential] | None = None,
    now: datetime.datetime | None = None,
    messages_by_credential: dict[Any, int] | None = None,
) -> dict[str, Any]:
    """The seed's stats keys: totals, rates, per_batch, recent_bounces, credentials, skipped.

    `credentials` defaults to the campaign's (pass them when already loaded);
    the account's time zone comes from `campaign.account` (select it along).
    `messages_by_credential`: the sending engine's count of messages sent per
    credential, all steps (`mailing.selectors.smtp_credentials_messages_sent`);
    the bounce rates' denominator is the larger of it and the enrollment-based
    count (every enrollment sent to got at least one message).
    """
    now = now or timezone.now()
    if credentials is None:
        credentials = list(campaign.smtp_credentials.select_related("mailbox"))

    campaign_key = _TALLY_CAMPAIGN.get_db_prep_value(campaign.pk, connection)
    with connection.cursor() as cursor:
        # 1. Counts per batch, one column per status, with the flags the rates need.
        cursor.execute(_BY_BATCH_SQL, [*STATUSES, campaign_key])
        by_batch = cursor.fetchall()
        # 2. Per credential: messages sent and bounces (and the bounces that
        # came before sent_at was stamped, which count as messages sent).
        cursor.execute(_BY_CREDENTIAL_SQL, [BOUNCED, BOUNCED, campaign_key, BOUNCED])
        credential_rows = cursor.fetchall()

    totals = _zero_totals()
    per_batch = []
    sent_to = opened = replied = 0
    for batch_number, *counts, batch_sent_to, batch_opened, batch_replied in by_batch:
        batch_totals = {status: int(n or 0) for status, n in zip(STATUSES, counts, strict=True)}
        for status, n in batch_totals.items():
            totals[status] += n
        per_batch.append({"batch_number": batch_number, "totals": batch_totals})
        sent_to += int(batch_sent_to or 0)
        opened += int(batch_opened or 0)
        replied += int(batch_replied or 0)
    bounced = totals[BOUNCED]

    bounced_unsent = 0
    by_credential: dict[str, dict[str, int]] = defaultdict(lambda: {"messages": 0, "bounced": 0})
    for credential_id, messages, credential_bounced, credential_bounced_unsent in credential_rows:
        bounced_unsent += int(credential_bounced_unsent or 0)
        credential_id = _TALLY_CREDENTIAL.to_python(credential_id)
        if credential_id != NO_CREDENTIAL:
            by_credential[str(credential_id)] = {
                "messages": int(messages or 0),
                "bounced": int(credential_bounced or 0),
            }
    messages_sent = sent_to + bounced_unsent
    if messages_by_credential:
        for credential_id, messages in messages_by_credential.items():
            entry = by_credential[str(credential_id)]
            entry["messages"] = max(entry["messages"], messages)
        messages_sent = max(messages_sent, sum(messages_by_credential.values()))

    # 3. Sent today per credential, and per mailbox over every campaign using it (a range scan over
    # today's sends of the mailboxes' credentials only).
    sent_today: dict[str, int] = {}
    mailbox_sent_today: dict[str, int] = {}
    if credentials:
        zone = account_zone(campaign.account)
        day_start = local_day_start(zone, local_day(zone, now))
        for row in (
            Enrollment.objects.filter(
                smtp_credential__mailbox_id__in={c.mailbox_id for c in credentials}, sent_at__gte=day_start
            )
            .values("smtp_credential_id", "smtp_credential__mailbox_id")
            .annotate(n=Count("*"))  # not Count("id"): COUNT(*) lets this be an index-only scan
            .order_by()
        ):
            sent_today[str(row["smtp_credential_id"])] = row["n"]
            mailbox = str(row["smtp_credential__mailbox_id"])
            mailbox_sent_today[mailbox] = mailbox_sent_today.get(mailbox, 0) + row["n"]

    # 4. The last bounces, newest first.
    recent_bounces = [
        {
            "contact_id": row["contact_id"],
            "email": row["contact__email"],
            "reason": row["bounce_reason"],
            "bounced_at": row["bounced_at"],
        }
        for row in Enrollment.objects.filter(campaign_id=campaign.pk, bounced_at__isnull=False)
        .order_by("-bounced_at")
        .values("contact_id", "contact__email", "bounce_reason", "bounced_at")[:RECENT_BOUNCES]
    ]

    # 5. Skips per kind.
    skipped = dict.fromkeys(SKIP_KINDS, 0)
    for row in EnrollmentSkip.objects.filter(campaign_id=campaign.pk).values("kind").annotate(n=Count("*")).order_by():
        skipped[row["kind"]] = row["n"]

    return {
        "totals": totals,
        "rates": {
            "bounce_rate": _rate(bounced, messages_sent),
            "open_rate": _rate(opened, sent_to),
            "reply_rate": _rate(replied, sent_to),
        },
        "per_batch": per_batch,
        "recent_bounces": recent_bounces,
        "credentials": [
            {
                "id": credential.pk,
                "mailbox_id": credential.mailbox_id,
                "label": credential.label,
                "from_email": credential.mailbox.email,
                "daily_limit": credential.mailbox.daily_limit,
                "campaign_daily_limit": credential.campaign_daily_limit,
                "sent_today": sent_today.get(str(credential.pk), 0),
                "mailbox_sent_today": mailbox_sent_today.get(str(credential.mailbox_id), 0),
                "bounce_rate": _rate(
                    by_credential[str(credential.pk)]["bounced"], by_credential[str(credential.pk)]["messages"]
                ),
                "disabled_at": credential.mailbox.disabled_at,
                "disabled_reason": credential.mailbox.disabled_reason,
                "imap_configured": credential.mailbox.imap_configured,
            }
            for credential in credentials
        ],
        "skipped": skipped,
    }


def campaign_tally_from_enrollments(*, campaign_id) -> dict[tuple, int]:
    """The tally recomputed from the enrollments themselves: one full aggregate.

    For checks (tests, the benchmark's baseline): it must equal
    `campaign_tally(campaign_id=…)`. Keys are (batch_number, status,
    smtp_credential_id or NO_CREDENTIAL, has_sent, has_opened, has_replied).
    """
    rows = (
        Enrollment.objects.filter(campaign_id=campaign_id)
        .annotate(
            has_sent=ExpressionWrapper(Q(sent_at__isnull=False), output_field=BooleanField()),
            has_opened=ExpressionWrapper(Q(opened_at__isnull=False), output_field=BooleanField()),
            has_replied=ExpressionWrapper(Q(replied_at__isnull=False), output_field=BooleanField()),
        )
        .values("batch_number", "status", "smtp_credential_id", "has_sent", "has_opened", "has_replied")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {
        (
            r["batch_number"],
            r["status"],
            r["smtp_credential_id"] or NO_CREDENTIAL,
            r["has_sent"],
            r["has_opened"],
            r["has_replied"],
        ): r["n"]
        for r in rows
    }


def campaign_tally(*, campaign_id) -> dict[tuple, int]:
    """The stored tally of a campaign, keyed like `campaign_tally_from_enrollments`."""
    return {
        (r.batch_number, r.status, r.smtp_credential_id, r.has_sent, r.has_opened, r.has_replied): r.n
        for r in EnrollmentTally.objects.filter(campaign_id=campaign_id)
    }


# --- enrollments across an account's campaigns (the /v1 compat surface) ------------------------------------

# An enrollment is active while something is left to send and its sequence did not stop: not completed
# (its last step went out), not unsubscribed, neither replied nor bounced. Otherwise it is finished
# (the /v1 seed's `completed`), since `ENDED_AT`: the first of those moments (LEAST skips NULLs).
ACTIVE = Q(completed_at__isnull=True, unsubscribed_at__isnull=True) & ~Q(
    status__in=[Enrollment.Status.REPLIED, Enrollment.Status.BOUNCED]
)
ENDED_AT = Least("completed_at", "unsubscribed_at", "replied_at", "bounced_at")
# A contact who finished a campaign this recently is not enrolled in it again (the /v1 seed's "recently").
RECENTLY_FINISHED = datetime.timedelta(hours=12)


def _account_campaigns(account: Account) -> QuerySet[Campaign]:
    """The account's campaigns; journeys are not campaigns on these surfaces (`campaign_list`)."""
    return Campaign.objects.filter(account=account, kind=Campaign.Kind.CAMPAIGN)


def account_enrollment_list(
    *,
    account: Account,
    campaign_id: Any = None,
    contact_id: Any = None,
    completed: bool | None = None,
) -> QuerySet[Enrollment]:
    """The account's enrollments in its campaigns (journeys' left out), newest first (`-id`).

    `campaign_id` and `contact_id` are UUIDs or None (no filter); `completed`
    True keeps the finished ones, False the active ones (`ACTIVE`); each row
    carries `completed` (not `ACTIVE`) and only the columns the surface shows.
    `id` increases with every enrollment created, so `-id` is "most recently
    created first" even where `created_at` is backdated (a priority
    enrollment's 2000-01-01).
    """
    campaigns = _account_campaigns(account)
    if campaign_id is not None:
        campaigns = campaigns.filter(pk=campaign_id)
    queryset = Enrollment.objects.filter(campaign__in=campaigns.values("pk"))
    if contact_id is not None:
        queryset = queryset.filter(contact_id=contact_id)
    queryset = queryset.annotate(completed=ExpressionWrapper(~ACTIVE, output_field=BooleanField()))
    if completed is not None:
        queryset = queryset.filter(completed=completed)
    return queryset.only("id", "campaign_id", "contact_id", "created_at", "updated_at").order_by("-id")


def account_enrollment_count(
    *,
    account: Account,
    campaign_id: Any = None,
    contact_id: Any = None,
    completed: bool | None = None,
) -> int:
    """How many enrollments `account_enrollment_list` holds for these filters, cheaply.

    Without a `contact_id` or `completed` filter the count is a sum over
    `EnrollmentTally` (a few rows per campaign, kept exact by triggers), not
    a count of up to millions of enrollments. A `contact_id` count reads the
    contact's few enrollments through its index; a `completed` count without
    one is a COUNT(*) over the account's enrollments.
    """
    if contact_id is None and completed is None:
        campaigns = _account_campaigns(account)
        if campaign_id is not None:
            campaigns = campaigns.filter(pk=campaign_id)
        total = EnrollmentTally.objects.filter(campaign_id__in=campaigns.values("pk")).aggregate(n=Sum("n"))["n"]
        return int(total or 0)
    return (
        account_enrollment_list(account=account, campaign_id=campaign_id, contact_id=contact_id, completed=completed)
        .order_by()
        .count()
    )


# The ids of one page, newest first: each campaign's newest `end` enrollments (a backward range scan of
# its (campaign, id) index), merged and cut at the offset. Ordering the account's enrollments by id
# through one `campaign_id IN (…)` read the whole table's key index backwards, other accounts' rows
# included (0.7 s for page 1 with 1.7M rows of others newer than the account's). A `completed` condition
# beside the campaign's made the planner walk the primary key again (0.2 s for page 1): see below.
_PAGE_IDS_SQL = """
SELECT page.id FROM campaigns_campaign c CROSS JOIN LATERAL ({newest}) page
WHERE c.account_id = %s AND c.kind = %s {campaign}
ORDER BY page.id DESC OFFSET %s LIMIT %s
"""
_NEWEST_SQL = """
    SELECT k.id FROM enrollments_enrollment k WHERE k.campaign_id = c.id ORDER BY k.id DESC LIMIT %s
"""
# With a condition on the row: the campaign's keys in order (fenced by OFFSET 0, so they stay an index
# scan) and the condition checked key by key through the primary key until the page is full.
_NEWEST_MATCHING_SQL = """
    SELECT newest.id FROM (
        SELECT k.id FROM enrollments_enrollment k WHERE k.campaign_id = c.id
        ORDER BY k.campaign_id DESC, k.id DESC OFFSET 0
    ) newest CROSS JOIN LATERAL (
        SELECT 1 FROM enrollments_enrollment WHERE enrollments_enrollment.id = newest.id AND {where} LIMIT 1
    ) matched
    ORDER BY newest.id DESC LIMIT %s
"""


def _where_sql(condition: Q) -> tuple[str, list]:
    """`condition` as SQL over the enrollments table (the ORM writes it: the rule is defined once)."""
    query = Enrollment.objects.filter(condition).query
    sql, params = query.where.as_sql(query.get_compiler(connection=connection), connection)
    return sql, list(params)


def account_enrollment_page(
    *,
    account: Account,
    offset: int,
    limit: int,
    campaign_id: Any = None,
    contact_id: Any = None,
    completed: bool | None = None,
) -> list[Enrollment]:
    """Rows `offset` to `offset + limit` of `account_enrollment_list` for these filters, in one query.

    A contact's enrollments are few: they are read through its index. Otherwise the page's ids come
    from each campaign's newest enrollments (`_PAGE_IDS_SQL`), so page 1 costs a few index probes
    whatever else the table holds, and page N a scan of the campaigns' N x limit newest keys.
    """
    filters = {"campaign_id": campaign_id, "contact_id": contact_id, "completed": completed}
    listed = account_enrollment_list(account=account, **filters)
    if contact_id is not None:
        return list(listed[offset : offset + limit])
    newest, params = _NEWEST_SQL, []
    if completed is not None:
        where, params = _where_sql(~ACTIVE if completed else ACTIVE)
        newest = _NEWEST_MATCHING_SQL.format(where=where)
    campaign = "" if campaign_id is None else "AND c.id = %s"
    sql = _PAGE_IDS_SQL.format(newest=newest, campaign=campaign)
    params += [offset + limit, account.pk, Campaign.Kind.CAMPAIGN.value]
    params += [] if campaign_id is None else [campaign_id]
    params += [offset, limit]
    return list(listed.filter(id__in=RawSQL(sql, params)))  # noqa: S611 (constant SQL, values as parameters)
