"""The worker's side: send one claimed chunk of one credential over one SMTP connection.

For each row, in `send_at` order (DESIGN.md, "The send pipeline"):

1. Envelope first: MAIL FROM and RCPT TO on the open connection. A 5xx for
   the recipient is a bounce; a 4xx (or a dropped connection) a retry.
2. One transaction, just before the message is handed over: the row goes
   `queued → sending` with its new Message-ID and a short lease, by a
   conditional UPDATE that re-checks everything (still claimed by this
   worker, campaign active, credential enabled, enrollment still eligible,
   contact subscribed), and the daily and monthly limits are reserved
   (`mailing.limits`). If any of it fails, the transaction rolls back, the
   envelope is RSET, and the row is deferred, put back or canceled
   (`mailing.outcomes.classify_refusal`).
3. DATA. Accepted → `sent`; 5xx → bounced; 4xx → retry (reservation given
   back); a broken connection or timeout during DATA → `unknown`: the
   server may have the message, so it is never sent again automatically.

Outcomes are recorded (`mailing.outcomes.record`), each in one transaction
with its enrollment transition and webhook event, every
`MAILING_OUTCOME_BATCH` messages (default 1: a crash leaves at most the one
message in flight in doubt; larger batches trade that for throughput, since
a crash then leaves up to a batch of delivered rows `unknown`). A row left
in `sending` by a crash is turned into `unknown` by the lease reaper.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import smtplib
import socket
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Campaign, SmtpCredential
from enrollments.models import Enrollment

from . import limits, outcomes
from .messages import build_message, message_id_new
from .models import ScheduledSend
from .smtp import ACCEPTED, PERMANENT, SmtpUnavailable, classify, close_quietly, open_connection, reply_text

Status = ScheduledSend.Status


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:60]


@dataclass
class ChunkReport:
    claimed: int = 0
    sent: int = 0
    bounced: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0
    canceled: int = 0
    requeued: int = 0
    lost: int = 0

    def add(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)


def _take_over(send_ids: list[Any], claim_token: str, worker: str) -> int:
    """Move the tick's claim to this worker; a redelivered task finds nothing left to take."""
    lease = timezone.now() + datetime.timedelta(seconds=settings.MAILING_LEASE_SECONDS)
    return ScheduledSend.objects.filter(pk__in=send_ids, status=Status.QUEUED, claimed_by=claim_token).update(
        claimed_by=worker, lease_until=lease, updated_at=timezone.now()
    )


def _load(send_ids: list[Any], worker: str) -> list[ScheduledSend]:
    rows = list(
        ScheduledSend.objects.filter(pk__in=send_ids, status=Status.QUEUED, claimed_by=worker)
        .select_related("step", "enrollment__contact", "campaign")
        .order_by("send_at", "id")
    )
    followups = {row.enrollment_id for row in rows if row.step.position > 1}
    threads = dict(
        ScheduledSend.objects.filter(enrollment_id__in=followups, step__position=1, message_id__isnull=False)
        .values_list("enrollment_id", "message_id")
        .order_by()
    )
    last_positions: dict[Any, int] = {}
    for row in rows:
        if row.campaign_id not in last_positions:
            last_positions[row.campaign_id] = row.campaign.sequence_steps.order_by("-position").values_list(
                "position", flat=True
            )[0]
        row.thread_message_id = threads.get(row.enrollment_id)
        row.is_last_step = row.step.position == last_positions[row.campaign_id]
    return rows


def _eligible(row: ScheduledSend, worker: str):
    statuses = (
        [Enrollment.Status.PENDING] if row.step.position == 1 else [Enrollment.Status.SENT, Enrollment.Status.OPENED]
    )
    return ScheduledSend.objects.filter(
        pk=row.pk,
        status=Status.QUEUED,
        claimed_by=worker,
        campaign__status=Campaign.Status.ACTIVE,
        smtp_credential__disabled_at__isnull=True,
        enrollment__unsubscribed_at__isnull=True,
        enrollment__status__in=statuses,
        enrollment__contact__subscribed=True,
    )


def _eligible_ids(rows: list[ScheduledSend], worker: str) -> set[Any]:
    """The chunk's rows that look sendable now, in one query, before any SMTP envelope.

    A pre-check only (the authoritative one is `_start_sending`'s conditional
    UPDATE): rows of a paused campaign, a stopped enrollment or a follow-up whose
    first message has not gone out are refused without opening an envelope.
    """
    first_message = Q(step__position=1, enrollment__status=Enrollment.Status.PENDING)
    follow_up = Q(step__position__gt=1, enrollment__status__in=[Enrollment.Status.SENT, Enrollment.Status.OPENED])
    return set(
        ScheduledSend.objects.filter(
            first_message | follow_up,
            pk__in=[row.pk for row in rows],
            status=Status.QUEUED,
            claimed_by=worker,
            campaign__status=Campaign.Status.ACTIVE,
            smtp_credential__disabled_at__isnull=True,
            enrollment__unsubscribed_at__isnull=True,
            enrollment__contact__subscribed=True,
        ).values_list("pk", flat=True)
    )


def _start_sending(row, credential, account, worker, message_id, day) -> str | None:
    """The `sending` commit with its reservations. None when committed; else why not (nothing changed)."""
    lease = timezone.now() + datetime.timedelta(seconds=settings.MAILING_SENDING_LEASE_SECONDS)
    with transaction.atomic():
        moved = _eligible(row, worker).update(
            status=Status.SENDING, message_id=message_id, lease_until=lease, updated_at=timezone.now()
        )
        if not moved:
            return "ineligible"
        refused = limits.limits_reserve(
            credential=credential, account=account, day=day, ensure_rows=False, first_message=row.step.position == 1
        )
        if refused:
            transaction.set_rollback(True)
            return refused
    return None


class _Session:
    """The chunk's SMTP connection, opened lazily and reopened after a drop."""

    def __init__(self, credential: SmtpCredential) -> None:
        self.credential = credential
        self.conn: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        if self.conn is None:
            self.conn = open_connection(self.credential)
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
    credential = SmtpCredential.objects.select_related("campaign__account").get(pk=smtp_credential_id)
    account = credential.campaign.account
    zone = limits.account_zone(account)
    rows = _load(send_ids, worker)
    report.claimed = len(rows)
    eligible = _eligible_ids(rows, worker)
    session = _Session(credential)
    pending: list[outcomes.Outcome] = []
    ensured: set[datetime.date] = set()
    threads: dict[Any, str] = {}  # step-1 Message-IDs sent in this chunk, for follow-ups in the same chunk
    try:
        for index, row in enumerate(rows):
            day = limits.local_day(zone, timezone.now())
            if day not in ensured:
                limits.limits_ensure_rows(credential=credential, account=account, day=day)
                ensured.add(day)
            if row.step.position > 1:
                if any(o.row.enrollment_id == row.enrollment_id for o in pending):
                    # Its earlier step went out in this chunk: record that first, so the state is current.
                    outcomes.record(pending, credential=credential, worker=worker)
                    pending = []
                row.thread_message_id = row.thread_message_id or threads.get(row.enrollment_id)
            if row.pk in eligible or row.enrollment_id in threads:
                outcome = _send_one(row, session, credential, account, worker, day)
            else:  # no envelope for a row that cannot go out (its follow-up sent in this chunk excepted)
                outcome = outcomes.refusal(row=row, refused="ineligible", day=day, worker=worker)
            report.add(outcome.kind)
            pending.append(outcome)
            if outcome.kind == "sent" and row.step.position == 1:
                threads[row.enrollment_id] = row.message_id
            if outcome.kind == "retried" and outcome.connection_failed:
                # The server is unreachable: every remaining row retries later, untouched.
                for rest in rows[index + 1 :]:
                    pending.append(outcomes.Outcome(kind="retried", row=rest, error=outcome.error, day=day))
                    report.add("retried")
                break
            if len(pending) >= settings.MAILING_OUTCOME_BATCH:
                outcomes.record(pending, credential=credential, worker=worker)
                pending = []
    finally:
        session.close()
        if pending:
            outcomes.record(pending, credential=credential, worker=worker)
    return report


def _send_one(row, session: _Session, credential, account, worker, day) -> outcomes.Outcome:
    contact = row.enrollment.contact
    try:
        conn = session.get()
    except SmtpUnavailable as exc:
        return outcomes.Outcome(kind="retried", row=row, error=str(exc), day=day, connection_failed=True)
    try:
        code, message = conn.mail(credential.from_email)
        if classify(code) != ACCEPTED:
            session.rset()
            return outcomes.Outcome(kind="retried", row=row, error=f"MAIL FROM: {reply_text(code, message)}", day=day)
        code, message = conn.rcpt(contact.email)
    except (OSError, smtplib.SMTPException) as exc:
        session.drop()
        return outcomes.Outcome(kind="retried", row=row, error=f"envelope: {exc}"[:1000], day=day)
    if classify(code) != ACCEPTED:
        # Refused before any message was handed over: no sending commit, nothing reserved.
        return _refused(session, row, code, message, day, stage="RCPT TO", reserved=False)

    message_id = message_id_new()
    refused = _start_sending(row, credential, account, worker, message_id, day)
    if refused:
        session.rset()
        return outcomes.refusal(row=row, refused=refused, day=day, worker=worker)
    row.message_id = message_id
    data = build_message(
        send=row,
        step=row.step,
        contact=contact,
        from_email=credential.from_email,
        from_name=credential.from_name,
        message_id=message_id,
        thread_message_id=row.thread_message_id,
    )
    try:
        code, message = conn.data(data)
    except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354): the body was never sent
        code, message = exc.smtp_code, exc.smtp_error
    except (OSError, smtplib.SMTPException) as exc:
        session.drop()
        return outcomes.Outcome(
            kind="unknown", row=row, error=f"DATA interrupted: {exc}"[:1000], day=day, reserved=True
        )
    if classify(code) != ACCEPTED:
        # Refused, before or after the body: the server did not take it.
        return _refused(session, row, code, message, day, stage="DATA", reserved=True)
    return outcomes.Outcome(kind="sent", row=row, error="", day=day, reserved=True, at=timezone.now())


def _refused(session: _Session, row, code: int, message, day, *, stage: str, reserved: bool) -> outcomes.Outcome:
    """A refusal of the recipient or the message: 5xx bounces it, 4xx retries later.

    421 means the server is closing the connection, so the session is dropped;
    otherwise RSET clears the transaction for the next message.
    """
    if code == 421:
        session.drop()
    else:
        session.rset()
    if classify(code) == PERMANENT:
        return outcomes.Outcome(kind="bounced", row=row, error=reply_text(code, message), day=day, reserved=reserved)
    return outcomes.Outcome(
        kind="retried", row=row, error=f"{stage}: {reply_text(code, message)}", day=day, reserved=reserved
    )
