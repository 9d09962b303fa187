"""Sending: set-based dispatch, and delivery throughput to a local SMTP sink.

- Dispatch 100,000 pending enrollments of a 3-step campaign (300,000 sends,
  two mailboxes of its own of 20,000 first messages a day, so slots roll over
  several days, jitter 120..420 s) through the dispatch service, vs the raw
  `INSERT … SELECT` of the same rows (enrollments x steps with a fixed time
  and credential) into a twin campaign. Target: at most 3x.
- Dispatch of 100,000 enrollments over 20 campaigns sharing 50 mailboxes:
  20 campaigns of 5,000 enrollments x 3 steps (the same 300,000 sends), each
  using 5 of the account's 50 mailboxes, neighbours overlapping so that every
  mailbox has two campaigns and each dispatch plans around the slots the
  other already holds. 800 first messages a day per mailbox: as above, each
  campaign's plan rolls over to a second or third day (the jitter spreads
  each campaign's sends over about 16 days). The total wall time of the 20
  dispatches vs the single-campaign dispatch above, same run. Target: at
  most 1.5x. Checked: no mailbox has more step-1 sends planned on any day
  (the account's days) than its daily limit, all campaigns together.
- Delivery with jitter 0, one worker process (this one, running the tick and
  the chunk tasks' code as `manage.py send_due --threads N` does) to an
  aiosmtpd sink in its own process, vs a plain smtplib loop that sends the
  same number of comparable messages over one connection to the same sink.
  Target: at least 70% of the loop's messages per second. Measured twice:
  with the 4 threads of `make run`'s worker (`--pool threads --concurrency 4`,
  one SMTP connection per chunk), and with one thread (one chunk at a time).
  And, for scale (no target), both against a sink that answers MAIL, RCPT and
  the message after 5 ms each, as a nearby real server might.
"""

from __future__ import annotations

import subprocess
import sys
import time
import traceback
from email import policy
from email.message import EmailMessage

from django.db import connection

from bench.common import Result, purge_accounts, timed
from campaigns.models import Campaign, SequenceStep, SmtpCredential
from mailboxes.models import Mailbox
from mailing import limits
from mailing.claiming import sends_claim_due
from mailing.dispatch import campaign_dispatch
from mailing.models import ScheduledSend
from mailing.sending import chunks_send

ENROLLMENTS = 100_000
SHARED_CAMPAIGNS, SHARED_MAILBOXES, MAILBOXES_PER_CAMPAIGN = 20, 50, 5
SHARED_DAILY_LIMIT = 800  # per mailbox; 5 x 800 a day per campaign: 5,000 take two days of slots or more
DELIVERIES = 2_000
WORKER_THREADS = 4  # Procfile.dev's worker: --pool threads --concurrency 4
LATENCY_MS, LATENCY_DELIVERIES = 5, 400  # a sink as slow to answer as a nearby real server

SINK = """
import asyncio, socket, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
delay = float(sys.argv[1])  # seconds before answering MAIL, RCPT and the message
class Sink:
    async def handle_MAIL(self, server, session, envelope, address, options):
        if delay:
            await asyncio.sleep(delay)
        envelope.mail_from = address
        return "250 OK"
    async def handle_RCPT(self, server, session, envelope, address, options):
        if delay:
            await asyncio.sleep(delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        if delay:
            await asyncio.sleep(delay)
        return "250 OK"
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
controller = Controller(Sink(), hostname="127.0.0.1", port=port,
                        authenticator=lambda *a: AuthResult(success=True), auth_require_tls=False)
controller.start()
print(port, flush=True)
sys.stdin.read()
"""

SEED_CONTACTS_SQL = """
INSERT INTO contacts_contact (id, account_id, email, first_name, last_name, company, custom_fields, subscribed,
                              created_at, updated_at)
SELECT gen_random_uuid(), %(account)s, 'p' || n || '@bench-sending.example.com', 'Ann' || n, '', 'Co', '{}', true,
       now(), now()
FROM generate_series(1, %(n)s) AS n
"""
SEED_ENROLLMENTS_SQL = """
INSERT INTO enrollments_enrollment (uuid, campaign_id, contact_id, status, batch_number, created_at, updated_at)
SELECT gen_random_uuid(), %(campaign)s, c.id, 'pending', 1, c.created_at, now()
FROM contacts_contact c WHERE c.account_id = %(account)s
"""
SEED_SHARED_ENROLLMENTS_SQL = """
INSERT INTO enrollments_enrollment (uuid, campaign_id, contact_id, status, batch_number, created_at, updated_at)
SELECT gen_random_uuid(), x.campaign, c.id, 'pending', 1, c.created_at, now()
FROM (SELECT id, created_at, row_number() OVER (ORDER BY created_at, id) - 1 AS k
      FROM contacts_contact WHERE account_id = %(account)s) c
JOIN unnest(%(campaigns)s::uuid[]) WITH ORDINALITY AS x(campaign, i) ON c.k / %(per_campaign)s = x.i - 1
"""
# Step-1 sends planned per mailbox and day (the account's days), over every campaign of the account.
PLANNED_PER_MAILBOX_DAY_SQL = """
SELECT k.mailbox_id, (s.send_at AT TIME ZONE %(zone)s)::date AS day, count(*)
FROM mailing_scheduledsend s
JOIN campaigns_sequencestep st ON st.id = s.step_id AND st.position = 1
JOIN campaigns_smtpcredential k ON k.id = s.smtp_credential_id
JOIN campaigns_campaign c ON c.id = s.campaign_id AND c.account_id = %(account)s
GROUP BY 1, 2
"""
RAW_DISPATCH_SQL = """
INSERT INTO mailing_scheduledsend
    (id, campaign_id, enrollment_id, step_id, smtp_credential_id, status, send_at, attempts,
     message_id, sent_at, last_error, claimed_by, lease_until, created_at, updated_at)
SELECT gen_random_uuid(), %(campaign)s, e.id, s.id, %(credential)s, 'scheduled',
       now() + make_interval(mins => s.delay_minutes), 0, NULL, NULL, '', '', NULL, now(), now()
FROM enrollments_enrollment e CROSS JOIN campaigns_sequencestep s
WHERE e.campaign_id = %(campaign)s AND s.campaign_id = %(campaign)s AND e.status = 'pending'
"""
ACCOUNTS = ["bench-sending-dispatch", "bench-sending-delivery", "bench-sending-shared-dispatch"]


def _mailbox(account, address: str, *, port: int = 25, daily_limit: int = 20_000) -> Mailbox:
    return Mailbox.objects.create(
        account=account,
        email=address,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_username=address,
        smtp_password="bench-only",  # noqa: S106 (the sink accepts any login)
        smtp_security="none",
        daily_limit=daily_limit,
    )


def _campaign(
    account,
    name: str,
    *,
    steps: int,
    port: int = 25,
    daily_limit: int = 20_000,
    mailboxes: list[Mailbox] | None = None,
    **fields,
) -> Campaign:
    """A campaign of `steps` steps sending through `mailboxes` (default: two of its own)."""
    campaign = Campaign.objects.create(account=account, name=name, **fields)
    for position in range(1, steps + 1):
        SequenceStep.objects.create(
            campaign=campaign,
            position=position,
            subject="Hi {{first_name}}",
            body_html="<p>Hello {{first_name}} at {{company}}, a short note.</p>" * 3,
            delay_minutes=0 if position == 1 else 4320,
        )
    if mailboxes is None:
        mailboxes = [
            _mailbox(account, f"{name}-sender{n}@bench-sending.example.com", port=port, daily_limit=daily_limit)
            for n in range(2)
        ]
    for n, mailbox in enumerate(mailboxes):
        SmtpCredential.objects.create(campaign=campaign, mailbox=mailbox, label=f"bench {n}")
    return campaign


def _purge() -> None:
    """The bench accounts' sends, enrollments, contacts, credentials and mailboxes (their campaigns paused)."""
    from accounts.models import Account

    ids = list(Account.objects.filter(name__in=ACCOUNTS).values_list("id", flat=True))
    Campaign.objects.filter(account_id__in=ids).update(status=Campaign.Status.PAUSED)
    purge_accounts(ids)


def _vacuum() -> None:
    with connection.cursor() as cursor:
        for table in ("mailing_scheduledsend", "enrollments_enrollment", "contacts_contact"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def _seed(account, campaigns: list[Campaign], n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(SEED_CONTACTS_SQL, {"account": account.pk, "n": n})
        for campaign in campaigns:
            cursor.execute(SEED_ENROLLMENTS_SQL, {"campaign": campaign.pk, "account": account.pk})
        for table in ("contacts_contact", "enrollments_enrollment", "mailing_scheduledsend"):
            cursor.execute(f"ANALYZE {table}")


def _dispatch_figure(ctx) -> Result:
    account = ctx.fresh_account(ACCOUNTS[0])
    raw = _campaign(account, "raw", steps=3, min_wait_seconds=120, max_wait_seconds=420)
    engine = _campaign(account, "engine", steps=3, min_wait_seconds=120, max_wait_seconds=420)
    _seed(account, [raw, engine], ENROLLMENTS)
    credential = raw.smtp_credentials.first()
    raw_seconds, _ = timed(
        lambda: connection.cursor().execute(RAW_DISPATCH_SQL, {"campaign": raw.pk, "credential": credential.pk})
    )
    seconds, result = timed(lambda: campaign_dispatch(campaign=engine, batch_number=1))
    assert result.sends == 3 * ENROLLMENTS and ScheduledSend.objects.filter(campaign=raw).count() == 3 * ENROLLMENTS
    return Result(
        "dispatch 100k enrollments x 3 steps vs raw INSERT…SELECT",
        round(seconds, 3),
        "s",
        baseline=round(raw_seconds, 3),
        target="<= 3x",
        ok=seconds <= 3 * raw_seconds,
        extra={"rows": result.sends, "days": len(result.by_day)},
    )


def _shared_dispatch_figure(ctx, single: Result) -> Result:
    """20 campaigns x 5,000 enrollments through 50 shared mailboxes, vs the single campaign's figure."""
    account = ctx.fresh_account(ACCOUNTS[2])
    pool = [
        _mailbox(account, f"shared{n}@bench-sending.example.com", daily_limit=SHARED_DAILY_LIMIT)
        for n in range(SHARED_MAILBOXES)
    ]
    # Campaign i uses the 5 mailboxes from 5i/2 on (mod 50): neighbours overlap, each mailbox has two users.
    campaigns = [
        _campaign(
            account,
            f"shared {i}",
            steps=3,
            mailboxes=[pool[(5 * i // 2 + j) % SHARED_MAILBOXES] for j in range(MAILBOXES_PER_CAMPAIGN)],
            min_wait_seconds=120,
            max_wait_seconds=420,
        )
        for i in range(SHARED_CAMPAIGNS)
    ]
    per_campaign = ENROLLMENTS // SHARED_CAMPAIGNS
    with connection.cursor() as cursor:
        cursor.execute(SEED_CONTACTS_SQL, {"account": account.pk, "n": ENROLLMENTS})
        cursor.execute(
            SEED_SHARED_ENROLLMENTS_SQL,
            {"account": account.pk, "campaigns": [c.pk for c in campaigns], "per_campaign": per_campaign},
        )
        for table in ("contacts_contact", "enrollments_enrollment", "mailing_scheduledsend"):
            cursor.execute(f"ANALYZE {table}")

    each = []

    def dispatch_all():
        results = []
        for campaign in campaigns:
            one, result = timed(lambda campaign=campaign: campaign_dispatch(campaign=campaign, batch_number=1))
            each.append(one)
            results.append(result)
        return results

    seconds, results = timed(dispatch_all)
    assert all(r.sends == 3 * per_campaign for r in results), [r.sends for r in results]
    with connection.cursor() as cursor:
        cursor.execute(PLANNED_PER_MAILBOX_DAY_SQL, {"account": account.pk, "zone": str(limits.account_zone(account))})
        planned = cursor.fetchall()
    most = max(n for _, _, n in planned)
    assert most <= SHARED_DAILY_LIMIT, f"a mailbox is planned {most} first messages on a day, over its limit"
    assert sum(n for _, _, n in planned) == ENROLLMENTS
    users = {}
    for campaign in campaigns:
        for mailbox_id in campaign.smtp_credentials.values_list("mailbox_id", flat=True):
            users[mailbox_id] = users.get(mailbox_id, 0) + 1
    return Result(
        "dispatch 100k enrollments x 3 steps, 20 campaigns sharing 50 mailboxes vs one campaign",
        round(seconds, 3),
        "s",
        baseline=single.value,
        target="<= 1.5x",
        ok=seconds <= 1.5 * single.value,
        extra={
            "rows": sum(r.sends for r in results),
            "campaigns": len(campaigns),
            "mailboxes": len(users),
            "campaigns_per_mailbox": sorted(set(users.values())),
            "days": len({day for _, day, _ in planned}),
            "most_first_messages_per_mailbox_day": most,
            "first_dispatch_s": round(each[0], 3),
            "last_dispatch_s": round(each[-1], 3),
            "slowest_dispatch_s": round(max(each), 3),
        },
    )


def _plain_loop(port: int, count: int) -> float:
    import smtplib

    msg = EmailMessage(policy=policy.SMTP)
    msg["From"], msg["Subject"] = "sender0@bench-sending.example.com", "Hi Ann"
    msg.set_content("Hello Ann at Co, a short note.\n" * 3, cte="quoted-printable")
    msg.add_alternative("<p>Hello Ann at Co, a short note.</p>" * 3, subtype="html", cte="quoted-printable")
    conn = smtplib.SMTP("127.0.0.1", port)
    conn.ehlo()
    start = time.perf_counter()
    for n in range(count):
        del msg["To"]
        msg["To"] = f"p{n}@bench-sending.example.com"
        conn.sendmail(msg["From"], [msg["To"]], msg.as_bytes())
    elapsed = time.perf_counter() - start
    conn.quit()
    return elapsed


def _engine_loop(threads: int) -> tuple[float, int]:
    sent = 0
    start = time.perf_counter()
    while True:
        chunks = sends_claim_due(enqueue=lambda *chunk: None).chunks
        if not chunks:
            break
        sent += chunks_send(chunks, threads=threads, worker_prefix="bench:")
    return time.perf_counter() - start, sent


def _delivery_figure(ctx, threads: int, *, latency_ms: int = 0, deliveries: int = DELIVERIES) -> Result:
    """One delivery figure: the worker vs the loop, to a sink that answers at once or after `latency_ms`.

    A worker that fails is a figure without a value and a NO (its error in `extra`, its traceback printed),
    so that the group's other figures are still reported.
    """
    worker = f"1 worker process, {threads} thread{'s' if threads > 1 else ''}"
    slow_sink = f", sink answering in {latency_ms} ms" if latency_ms else ""
    name = f"delivery, {worker}, jitter 0{slow_sink}, vs smtplib loop"
    target = ">= 70% of the loop" if not latency_ms else ""
    loop_rate = None
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(latency_ms / 1000)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(sink.stdout.readline())
        account = ctx.fresh_account(ACCOUNTS[1])
        campaign = _campaign(
            account, "delivery", steps=1, port=port, daily_limit=100_000, min_wait_seconds=0, max_wait_seconds=0
        )
        _seed(account, [campaign], deliveries)
        campaign_dispatch(campaign=campaign, batch_number=1)
        with connection.cursor() as cursor:  # as autovacuum would have: plans for a table of this size
            cursor.execute("ANALYZE mailing_scheduledsend")
        _plain_loop(port, 200 if not latency_ms else 20)  # warm the sink
        loop_rate = deliveries / _plain_loop(port, deliveries)
        seconds, sent = _engine_loop(threads)
        assert sent == deliveries, f"{sent} of {deliveries} sent"
    except Exception as exc:
        traceback.print_exc()
        return Result(
            name,
            None,
            "msg/s",
            baseline=None if loop_rate is None else round(loop_rate, 1),
            target=target,
            ok=False,
            extra={"error": f"{type(exc).__name__}: {exc}"[:500]},
        )
    finally:
        sink.stdin.close()
        sink.terminate()
        sink.wait(10)
    rate = sent / seconds
    return Result(
        name,
        round(rate, 1),
        "msg/s",
        baseline=round(loop_rate, 1),
        target=target,
        ok=rate >= 0.7 * loop_rate if not latency_ms else None,
        extra={"share_of_loop": round(rate / loop_rate, 3), "messages": sent},
    )


def run(ctx) -> list:
    _purge()
    try:
        dispatch = _dispatch_figure(ctx)
        # Each figure's rows go before the next (the delivery figure's worker must not claim them) and,
        # vacuumed, neither are they cleaned up in the middle of the next figure, on the same two cores
        # (in production autovacuum keeps up with a steady churn).
        _purge()
        _vacuum()
        shared = _shared_dispatch_figure(ctx, dispatch)
        _purge()
        _vacuum()
        figures = [dispatch, shared, _delivery_figure(ctx, WORKER_THREADS)]
        _purge()
        figures.append(_delivery_figure(ctx, 1))
        _purge()
        # For scale, no target: a real server takes milliseconds to answer each command, and there the
        # worker's chunks running side by side are what sets its rate.
        figures.append(_delivery_figure(ctx, WORKER_THREADS, latency_ms=LATENCY_MS, deliveries=LATENCY_DELIVERIES))
        return figures
    finally:
        _purge()
        _vacuum()  # nor in the next group's
