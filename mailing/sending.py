"""The worker's side: send one claimed chunk of one credential over one SMTP connection.

For each row, in `send_at` order (DESIGN.md, "The send pipeline"):

1. Envelope first: MAIL FROM and RCPT TO on the open connection. A 5xx for
   the recipient is a bounce; a 4xx (or a dropped connection) a retry.
2. The limits: one message of the day and of the month, from the chunk's
   reservations (`mailing.limits.Allowance`: reserved in blocks with
   conditional UPDATEs, the unused rest given back at the end).
3. The `sending` commit, just before the message is handed over: one
   statement (`_ADVANCE_SQL`) moves this row `queued → sending` with its new
   Message-ID and a short lease, re-checking everything
   (`mailing.eligibility`: still claimed by this worker, campaign active,
   credential enabled, enrollment still eligible, contact subscribed), and
   marks the previous message the server took `sent`. If the row was
   refused, the envelope is RSET and the row is deferred, put back or
   canceled, as the condition it failed says (`mailing.eligibility.refusal`).
4. DATA. Accepted → `sent`, written by the next row's statement (or at the
   end of the chunk); 5xx → bounced; 4xx → retry (reservation given back);
   a broken connection or timeout during DATA → `unknown`: the server may
   have the message, so it is never sent again automatically.

So one row at most is ever in doubt: a crash leaves the message in flight
`sending` (the lease reaper makes it `unknown`), and every message before it
`sent`. The consequences of `sent` (the enrollment's transition and events,
completion, counters) are applied set-based every `MAILING_OUTCOME_BATCH`
sent messages or `OUTCOME_BATCH_MAX_SECONDS`, before a follow-up of one of
them, before any other outcome is recorded, and at the end of the chunk
(`mailing.outcomes.sent_outcomes_apply`); other outcomes are recorded at once
(`mailing.outcomes.record`).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import queue
import smtplib
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, SequenceStep, SmtpCredential

from . import eligibility, limits, outcomes
from .messages import build_message, message_id_new
from .models import ScheduledSend
from .outcomes import Kind, Outcome
from .smtp import (
    ACCEPTED,
    PERMANENT,
    SmtpUnavailable,
    classify,
    close_quietly,
    envelope,
    open_connection,
    reply_text,
)

Status = ScheduledSend.Status
logger = logging.getLogger(__name__)
# A sent message's consequences wait about this long at most (checked after each message; also at most
# `MAILING_OUTCOME_BATCH` messages), so its enrollment, stats and events follow it closely.
OUTCOME_BATCH_MAX_SECONDS = 2.0


def worker_identity() -> str:
    """Who holds a claim (`claimed_by`): the host and process, and the thread in a threaded pool.

    Each thread sends its own chunks and applies its own ledger; sharing one
    identity, threads would claim each other's pending rows and wait on each other's locks.
    """
    identity = f"{socket.gethostname()}:{os.getpid()}"  # a whole host name: pods differ by its suffix
    if threading.current_thread() is not threading.main_thread():
        identity += f":{threading.get_native_id()}"
    return identity


@dataclass
class ChunkReport:
    """How many rows the chunk's worker took over, and what became of them (`kinds`)."""

    claimed: int = 0
    kinds: Counter[Kind] = field(default_factory=Counter)

    def add(self, kind: Kind, count: int = 1) -> None:
        self.kinds[kind] += count

    @property
    def sent(self) -> int:
        return self.kinds[Kind.SENT]


def _take_over(send_ids: list[Any], claim_token: str, worker: str) -> int:
    """Move the tick's claim to this worker; a redelivered task finds nothing left to take."""
    lease = timezone.now() + datetime.timedelta(seconds=settings.MAILING_LEASE_SECONDS)
    return ScheduledSend.objects.filter(pk__in=send_ids, status=Status.QUEUED, claimed_by=claim_token).update(
        claimed_by=worker, lease_until=lease, updated_at=timezone.now()
    )


def _load(send_ids: list[Any], worker: str) -> list[ScheduledSend]:
    """The chunk's rows still claimed by `worker`, in send order, with what sending them reads.

    A chunk's rows share a few steps and campaigns: those are loaded once each,
    not once per row, and the thread a follow-up answers (step 1's Message-ID)
    is looked up for all rows in one query.
    """
    rows = list(
        ScheduledSend.objects.filter(pk__in=send_ids, status=Status.QUEUED, claimed_by=worker)
        .select_related("enrollment__contact")
        .order_by("send_at", "id")
    )
    steps = {step.pk: step for step in SequenceStep.objects.filter(pk__in={row.step_id for row in rows})}
    campaigns = {
        campaign.pk: campaign for campaign in Campaign.objects.filter(pk__in={row.campaign_id for row in rows})
    }
    followups = {row.enrollment_id for row in rows if steps[row.step_id].position > 1}
    threads = dict(
        ScheduledSend.objects.filter(enrollment_id__in=followups, step__position=1, message_id__isnull=False)
        .values_list("enrollment_id", "message_id")
        .order_by()
    )
    for row in rows:
        row.step, row.campaign = steps[row.step_id], campaigns[row.campaign_id]
        row.thread_message_id = threads.get(row.enrollment_id)
    return rows


# The `sending` commit of `next` (if it passes every condition of `mailing.eligibility`) and the `sent`
# mark of `previous` (the message before it, which the server took), in one statement: one round trip
# and one commit per message, and never two rows in doubt.
_ADVANCE_SQL = f"""
UPDATE mailing_scheduledsend s SET
    status = CASE WHEN status = 'queued' THEN 'sending' ELSE 'sent' END,
    message_id = CASE WHEN status = 'queued' THEN %(message_id)s ELSE message_id END,
    lease_until = CASE WHEN status = 'queued' THEN %(lease)s ELSE lease_until END,
    sent_at = CASE WHEN status = 'queued' THEN sent_at ELSE %(sent_at)s END,
    outcome_pending = (status <> 'queued'),
    last_error = CASE WHEN status = 'queued' THEN last_error ELSE '' END,
    updated_at = %(now)s
WHERE s.id IN (%(previous)s, %(next)s) AND s.claimed_by = %(worker)s AND (
    (s.id = %(previous)s AND s.status IN ('sending', 'unknown'))
    OR (s.id = %(next)s AND {eligibility.where(eligibility.CONDITIONS)}))
RETURNING s.id
"""


class _Ledger:
    """The chunk's sent messages: the last one waiting for its `sent` mark, the marked ones waiting
    for their consequences (`outcomes.sent_outcomes_apply`)."""

    def __init__(self, credential: SmtpCredential, worker: str) -> None:
        self.credential, self.worker = credential, worker
        self.previous: tuple[Any, datetime.datetime] | None = None  # (row id, sent at), not marked yet
        self.marked = 0  # marked `sent`, consequences not applied yet
        self.enrollments: set[Any] = set()  # of both
        self.since: float | None = None  # monotonic time of the oldest one
        # The eligibility parameters of a first message and of a follow-up, by `first_message`.
        self.eligibility = eligibility.eligibility_params(worker=worker)

    def __len__(self) -> int:
        return self.marked + (self.previous is not None)

    def age(self) -> float:
        """Seconds since the oldest message not applied yet went out (0 when there is none)."""
        return 0.0 if self.since is None else time.monotonic() - self.since

    def sent(self, row: ScheduledSend, at: datetime.datetime) -> None:
        self.previous = (row.pk, at)
        self.enrollments.add(row.enrollment_id)
        if self.since is None:
            self.since = time.monotonic()

    def advance(self, row: ScheduledSend | None = None, message_id: str | None = None) -> bool:
        """Commit `row` as `sending` (when given and still eligible) and the previous message as `sent`.

        Returns whether `row` is now `sending`.
        """
        if row is None and self.previous is None:
            return False
        now = timezone.now()
        params = {
            "next": row.pk if row is not None else None,
            "previous": self.previous[0] if self.previous else None,
            "message_id": message_id,
            "lease": now + datetime.timedelta(seconds=settings.MAILING_SENDING_LEASE_SECONDS),
            "sent_at": self.previous[1] if self.previous else None,
            "now": now,
            **self.eligibility[row is not None and row.step.position == 1],
        }
        changed = {value for (value,) in _execute_prepared(_ADVANCE_SQL, params)}
        if self.previous is not None:
            self.marked += 1
            self.previous = None
        return row is not None and row.pk in changed

    def apply(self) -> None:
        """Mark the last sent message and apply the consequences of every marked one."""
        if self.previous is not None:
            self.advance()
        if self.marked:
            outcomes.sent_outcomes_apply(credential=self.credential, worker=self.worker)
        self.marked, self.enrollments, self.since = 0, set(), None


def _execute_prepared(sql: str, params: dict[str, Any]) -> list[tuple]:
    """Run `sql` with server-side binding, so PostgreSQL can prepare it once per connection.

    Django binds parameters client-side, so PostgreSQL plans every statement
    anew; for the per-message statement that planning cost as much as running
    it. With `prepare_threshold` set (config/settings.py), psycopg prepares a
    statement a connection has run a few times. Still a Django cursor: logged,
    counted and wrapped like any other query.
    """
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    cursor = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class _Session:
    """The chunk's SMTP connection, opened lazily and reopened after a drop."""

    def __init__(self, credential: SmtpCredential) -> None:
        self.credential = credential
        self.conn: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        if self.conn is None:
            self.conn = open_connection(self.credential.mailbox)
        return self.conn

    def drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None

    def rset(self) -> None:
        try:
            if self.conn is not None:
                self.conn.rset()
        except (OSError, smtplib.SMTPException):
            self.drop()

    def close(self) -> None:
        close_quietly(self.conn)
        self.conn = None


def send_chunk(
    *, smtp_credential_id: Any, send_ids: list[Any], claim_token: str, worker: str | None = None
) -> ChunkReport:
    """Send the rows of one claimed chunk through one credential (module docstring). Idempotent per claim."""
    worker = worker or worker_identity()
    report = ChunkReport()
    if not _take_over(send_ids, claim_token, worker):
        return report
    credential = SmtpCredential.objects.select_related("campaign__account", "mailbox").get(pk=smtp_credential_id)
    rows = _load(send_ids, worker)
    report.claimed = len(rows)
    eligible = eligibility.eligible_ids(rows, worker)
    session = _Session(credential)
    allowance = limits.Allowance(credential=credential, account=credential.campaign.account)
    ledger = _Ledger(credential, worker)
    threads: dict[Any, str] = {}  # step-1 Message-IDs sent in this chunk, for follow-ups in the same chunk

    def record(outcome: Outcome) -> None:
        ledger.apply()  # in order, and the bounce-rate guard counts every message sent before this one
        outcomes.record([outcome], credential=credential, worker=worker)

    # What the chunk may still send, for sizing its reservations: the rows the pre-check let through,
    # and the follow-ups whose first message is one of them.
    first_enrollments = {row.enrollment_id for row in rows if row.step.position == 1 and row.pk in eligible}

    def may_send(row: ScheduledSend) -> bool:
        return row.pk in eligible or (row.step.position > 1 and row.enrollment_id in first_enrollments)

    firsts_left = len(first_enrollments)
    left = sum(1 for row in rows if may_send(row))
    try:
        try:
            for index, row in enumerate(rows):
                day = allowance.today()
                if row.step.position > 1:
                    if row.enrollment_id in ledger.enrollments:
                        ledger.apply()  # its earlier step went out in this chunk: make the enrollment current first
                    row.thread_message_id = row.thread_message_id or threads.get(row.enrollment_id)
                if row.pk in eligible or row.enrollment_id in threads:
                    outcome = _send_one(
                        row, session, ledger, allowance, day=day, worker=worker, firsts_left=firsts_left, left=left
                    )
                else:  # no envelope for a row that cannot go out (its follow-up sent in this chunk excepted)
                    outcome = eligibility.refusal(row=row, day=day, worker=worker)
                if may_send(row):
                    left -= 1
                    firsts_left -= row.step.position == 1
                report.add(outcome.kind)
                if outcome.kind == Kind.SENT:
                    ledger.sent(row, outcome.at)
                    if row.step.position == 1:
                        threads[row.enrollment_id] = row.message_id
                    if len(ledger) >= settings.MAILING_OUTCOME_BATCH or ledger.age() >= OUTCOME_BATCH_MAX_SECONDS:
                        ledger.apply()
                    continue
                record(outcome)
                if outcome.kind == Kind.RETRIED and outcome.connection_failed:
                    # The server is unreachable: every remaining row retries later, untouched.
                    rest = [Outcome(kind=Kind.RETRIED, row=r, error=outcome.error, day=day) for r in rows[index + 1 :]]
                    outcomes.record(rest, credential=credential, worker=worker)
                    report.add(Kind.RETRIED, len(rest))
                    break
        finally:
            session.close()
            ledger.apply()
    finally:
        allowance.close()  # even when the ledger could not be applied (the reaper will)
    return report


def chunks_send(chunks: list[tuple[Any, list[Any], str]], *, threads: int = 1, worker_prefix: str = "") -> int:
    """Send claimed `(credential id, send ids, claim token)` chunks from this process; returns how many went out.

    On `threads` threads, each with its own SMTP and database connections and
    its own identity, as a Celery worker with a threads pool runs the
    `mailing.send_chunk` tasks: SMTP and the database are waited on, so one
    process keeps several conversations going. `manage.py send_due` and the benchmark use it.
    """
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for chunk in chunks:
        pending.put(chunk)
    sent: list[int] = []

    def drain() -> None:
        worker = worker_prefix + worker_identity()
        while True:
            try:
                credential_id, send_ids, claim_token = pending.get_nowait()
            except queue.Empty:
                return
            report = send_chunk(
                smtp_credential_id=credential_id, send_ids=send_ids, claim_token=claim_token, worker=worker
            )
            sent.append(report.sent)

    if threads <= 1 or len(chunks) <= 1:
        drain()
        return sum(sent)
    errors: list[BaseException] = []

    def drain_in_thread() -> None:
        try:
            drain()
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)
        finally:
            connection.close()  # this thread's own

    # Not daemons: on Ctrl-C the threads finish their chunks (giving back what they reserved) before the exit.
    pool = [threading.Thread(target=drain_in_thread) for _ in range(min(threads, len(chunks)))]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    for error in errors[1:]:
        logger.error("A sending thread failed as well", exc_info=error)
    if errors:
        raise errors[0]
    return sum(sent)


def _send_one(
    row,
    session: _Session,
    ledger: _Ledger,
    allowance: limits.Allowance,
    *,
    day,
    worker: str,
    firsts_left: int,
    left: int,
) -> Outcome:
    credential = session.credential
    contact = row.enrollment.contact
    first_message = row.step.position == 1
    try:
        conn = session.get()
    except SmtpUnavailable as exc:
        return Outcome(kind=Kind.RETRIED, row=row, error=str(exc), day=day, connection_failed=True)
    try:
        stage, code, message = envelope(conn, credential.mailbox.email, contact.email)
        if stage == "MAIL FROM" and classify(code) != ACCEPTED:
            session.rset()
            return Outcome(kind=Kind.RETRIED, row=row, error=f"MAIL FROM: {reply_text(code, message)}", day=day)
    except (OSError, smtplib.SMTPException) as exc:
        session.drop()
        return Outcome(kind=Kind.RETRIED, row=row, error=f"envelope: {exc}"[:1000], day=day)
    if classify(code) != ACCEPTED:
        # Refused before any message was handed over: no sending commit, nothing reserved.
        return _refused(session, row, code, message, day, stage="RCPT TO", reserved=False)

    limit = allowance.take(day=day, first_message=first_message, firsts_left=firsts_left, left=left)
    if limit:
        session.rset()
        return Outcome(kind=Kind.DEFERRED, row=row, day=day, reason=limit, error=f"{limit} reached")
    message_id = message_id_new()
    if not ledger.advance(row, message_id):
        allowance.give_back(day=day, first_message=first_message)
        session.rset()
        return eligibility.refusal(row=row, day=day, worker=worker)
    row.message_id = message_id
    data = build_message(
        send=row,
        step=row.step,
        contact=contact,
        from_email=credential.mailbox.email,
        from_name=credential.mailbox.from_name,
        message_id=message_id,
        thread_message_id=row.thread_message_id,
    )
    try:
        code, message = conn.data(data)
    except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354): the body was never sent
        code, message = exc.smtp_code, exc.smtp_error
    except (OSError, smtplib.SMTPException) as exc:
        session.drop()
        return Outcome(kind=Kind.UNKNOWN, row=row, error=f"DATA interrupted: {exc}"[:1000], day=day, reserved=True)
    if classify(code) != ACCEPTED:
        # Refused, before or after the body: the server did not take it.
        return _refused(session, row, code, message, day, stage="DATA", reserved=True)
    logger.info(
        "Sent step %s to %s through %s (campaign %s)", row.step.position, contact.email, credential, row.campaign_id
    )
    return Outcome(kind=Kind.SENT, row=row, error="", day=day, reserved=True, at=timezone.now())


def _refused(session: _Session, row, code: int, message, day, *, stage: str, reserved: bool) -> Outcome:
    """A refusal of the recipient or the message: 5xx bounces it, 4xx retries later.

    421 means the server is closing the connection, so the session is dropped;
    otherwise RSET clears the transaction for the next message.
    """
    if code == 421:
        session.drop()
    else:
        session.rset()
    if classify(code) == PERMANENT:
        return Outcome(kind=Kind.BOUNCED, row=row, error=reply_text(code, message), day=day, reserved=reserved)
    return Outcome(
        kind=Kind.RETRIED, row=row, error=f"{stage}: {reply_text(code, message)}", day=day, reserved=reserved
    )
