"""Writes for enrollments: the state machine, bulk and single enroll.

The state machine is the one place an enrollment's status changes:

    pending → sent → opened → replied        sent → replied
    pending | sent | opened → bounced
    any state → unsubscribed (sets unsubscribed_at; the sequence stops)

replied, bounced and unsubscribed are final. Each transition is a
conditional UPDATE (`WHERE status IN (allowed sources) AND unsubscribed_at IS
NULL`), so a late or duplicate event (an open after a reply, a second
bounce) matches no row, changes nothing and emits nothing. A real
transition records its webhook event in the same transaction.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from campaigns.models import Campaign, Outreach
from contacts.models import Contact, ContactImport
from contacts.mx import MxStatus, check_domains, domain_of
from core.errors import ApplicationError
from webhooks import events
from webhooks.services import webhook_events_record

from .models import Enrollment, EnrollmentSkip
from .selectors import ACTIVE, ENDED_AT, RECENTLY_FINISHED

Status = Enrollment.Status

# target status -> the statuses it may come from
ALLOWED_SOURCES: dict[str, tuple[str, ...]] = {
    Status.SENT: (Status.PENDING,),
    Status.OPENED: (Status.SENT,),
    Status.REPLIED: (Status.SENT, Status.OPENED),
    Status.BOUNCED: (Status.PENDING, Status.SENT, Status.OPENED),
}
FINAL_STATUSES = (Status.REPLIED, Status.BOUNCED)
EVENT_FOR_STATUS = {
    Status.SENT: events.ENROLLMENT_SENT,
    Status.OPENED: events.ENROLLMENT_OPENED,
    Status.REPLIED: events.ENROLLMENT_REPLIED,
    Status.BOUNCED: events.ENROLLMENT_BOUNCED,
}
PRIORITY_CREATED_AT = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)

SKIP_REASONS = {
    EnrollmentSkip.Kind.ALREADY_ENROLLED: "Already enrolled in this campaign",
    EnrollmentSkip.Kind.CROSS_CAMPAIGN_DUPLICATE: "Already enrolled in another campaign in this outreach",
}


def enrollment_event_data(enrollment: Enrollment, *, contact_email: str, step: int | None = None) -> dict[str, Any]:
    """The `data` of an enrollment.* webhook event."""

    def stamp(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": str(enrollment.uuid),
        "campaign_id": str(enrollment.campaign_id),
        "contact_id": str(enrollment.contact_id),
        "contact_email": contact_email,
        "smtp_credential_id": str(enrollment.smtp_credential_id) if enrollment.smtp_credential_id else None,
        "step": step,
        "status": enrollment.status,
        "batch_number": enrollment.batch_number,
        "created_at": stamp(enrollment.created_at),
        "sent_at": stamp(enrollment.sent_at),
        "opened_at": stamp(enrollment.opened_at),
        "replied_at": stamp(enrollment.replied_at),
        "bounced_at": stamp(enrollment.bounced_at),
        "bounce_reason": enrollment.bounce_reason,
        "unsubscribed_at": stamp(enrollment.unsubscribed_at),
        "completed_at": stamp(enrollment.completed_at),
    }


def journey_exit_reason(enrollment: Enrollment) -> str | None:
    """Why a journey's enrollment stopped before its last step (None while it runs or once completed)."""
    if enrollment.completed_at is not None:
        return None
    if enrollment.unsubscribed_at is not None:
        return "unsubscribed"
    if enrollment.status in (Status.BOUNCED, Status.REPLIED):
        return enrollment.status
    return None


def journey_exited_at(enrollment: Enrollment) -> datetime.datetime | None:
    """When a journey's enrollment stopped before its last step (None while it runs or once completed)."""
    reason = journey_exit_reason(enrollment)
    return {
        "unsubscribed": enrollment.unsubscribed_at,
        "bounced": enrollment.bounced_at,
        "replied": enrollment.replied_at,
    }.get(reason or "")


def journey_enrollment_event_data(enrollment: Enrollment, *, contact_email: str) -> dict[str, Any]:
    """The `data` of a journey_enrollment.* event: a journey's enrollment as journeys show it."""
    reason, exited_at = journey_exit_reason(enrollment), journey_exited_at(enrollment)
    base = enrollment_event_data(enrollment, contact_email=contact_email)
    return {
        "id": base["id"],
        "journey_id": base["campaign_id"],  # a journey is its campaign: the same id
        "contact_id": base["contact_id"],
        "contact_email": contact_email,
        "status": "completed" if enrollment.completed_at else "exited",
        "enrolled_at": base["created_at"],
        "completed_at": base["completed_at"],
        "exited_at": exited_at.isoformat().replace("+00:00", "Z") if exited_at else None,
        "exit_reason": reason,
    }


# The enrollment events after which a journey's enrollment has exited, and how it had not before.
_EXITS = {
    events.ENROLLMENT_BOUNCED: lambda e: e.unsubscribed_at is None,
    events.ENROLLMENT_REPLIED: lambda e: e.unsubscribed_at is None,
    events.ENROLLMENT_UNSUBSCRIBED: lambda e: e.status not in FINAL_STATUSES,
}

# What a set-based change returns: the enrollments as they are after it, with what their events need.
_RETURNING = ", ".join(
    [
        *(field.column for field in Enrollment._meta.concrete_fields),
        "(SELECT c.email FROM contacts_contact c WHERE c.id = enrollments_enrollment.contact_id) AS contact_email",
        "(SELECT k.account_id FROM campaigns_campaign k WHERE k.id = enrollments_enrollment.campaign_id) AS account_id",
        "(SELECT k.kind FROM campaigns_campaign k WHERE k.id = enrollments_enrollment.campaign_id) AS campaign_kind",
    ]
)


def _enrollments_stamp(
    *,
    at_by_id: dict[int, datetime.datetime],
    column: str,
    sets: dict[str, Any],
    where: str,
    where_params: list,
) -> list[Enrollment]:
    """One UPDATE of the enrollments of `at_by_id` that match `where`: `column` set to each one's own
    time, and `sets`. Returns the rows it changed, as they are now, with `contact_email` and `account_id`.
    """
    ids = list(at_by_id)
    assignments = [f"{column} = CASE id {' '.join(['WHEN %s THEN %s'] * len(ids))} END"]
    params = [value for pk in ids for value in (pk, at_by_id[pk])]
    assignments += [f"{name} = %s" for name in sets]
    params += list(sets.values())
    sql = (
        f"UPDATE enrollments_enrollment SET {', '.join(assignments)} "
        f"WHERE id IN ({', '.join(['%s'] * len(ids))}) AND {where} RETURNING {_RETURNING}"
    )
    return list(Enrollment.objects.raw(sql, [*params, *ids, *where_params]))


def _record_events(changes: list[tuple[str, Enrollment, int | None]]) -> None:
    """The events of `changes` ((type, enrollment, step) in order), one batch per account."""
    by_account: dict[Any, list[tuple[str, dict[str, Any]]]] = {}
    for event_type, enrollment, step in changes:
        data = enrollment_event_data(enrollment, contact_email=enrollment.contact_email, step=step)
        batch = by_account.setdefault(enrollment.account_id, [])
        batch.append((event_type, data))
        if enrollment.campaign_kind != Campaign.Kind.JOURNEY:
            continue
        # A journey's enrollment: completed with its last step, exited when stopped before it.
        journey_event = None
        if event_type == events.ENROLLMENT_COMPLETED:
            journey_event = events.JOURNEY_ENROLLMENT_COMPLETED
        elif event_type in _EXITS and enrollment.completed_at is None and _EXITS[event_type](enrollment):
            journey_event = events.JOURNEY_ENROLLMENT_EXITED
        if journey_event:
            batch.append(
                (journey_event, journey_enrollment_event_data(enrollment, contact_email=enrollment.contact_email))
            )
    for account_id, batch in by_account.items():
        webhook_events_record(account_id=account_id, events=batch)


def enrollments_transition(
    *,
    to: str,
    at_by_id: dict[int, datetime.datetime],
    bounce_reason: str | None = None,
    smtp_credential_id: Any = None,
    step: int | None = None,
) -> list[Enrollment]:
    """Move each enrollment of `at_by_id` to `to`, at its own time, where the state machine allows it.

    One UPDATE for all of them and their events in one batch, whatever their
    number. Returns the enrollments that moved (the others are already
    there, final or unsubscribed: nothing changed for them and no event was
    recorded). `smtp_credential_id` is recorded on `sent` and `bounced`.
    """
    if to not in ALLOWED_SOURCES:
        raise ValueError(f"Unknown target status {to!r}")
    if not at_by_id:
        return []
    sets: dict[str, Any] = {"status": to, "updated_at": timezone.now()}
    if to == Status.BOUNCED:
        sets["bounce_reason"] = (bounce_reason or "")[:2000]
    if to in (Status.SENT, Status.BOUNCED) and smtp_credential_id is not None:
        # the credential that carried step 1, or the one whose message bounced (the bounce-rate guard counts it)
        sets["smtp_credential_id"] = smtp_credential_id
    sources = ALLOWED_SOURCES[to]
    with transaction.atomic():
        moved = _enrollments_stamp(
            at_by_id=at_by_id,
            column=f"{to}_at",
            sets=sets,
            where=f"status IN ({', '.join(['%s'] * len(sources))}) AND unsubscribed_at IS NULL",
            where_params=list(sources),
        )
        _record_events([(EVENT_FOR_STATUS[to], enrollment, step) for enrollment in moved])
    return moved


def enrollment_transition(
    *,
    enrollment_id: int,
    to: str,
    at: datetime.datetime | None = None,
    bounce_reason: str | None = None,
    smtp_credential_id: Any = None,
    step: int | None = None,
) -> Enrollment | None:
    """Move one enrollment to `to` if the state machine allows it from where it is (`enrollments_transition`).

    Returns the updated enrollment, or None when the transition does not
    apply (already there, a final state, unsubscribed): nothing changed and
    no event was recorded.
    """
    moved = enrollments_transition(
        to=to,
        at_by_id={enrollment_id: at or timezone.now()},
        bounce_reason=bounce_reason,
        smtp_credential_id=smtp_credential_id,
        step=step,
    )
    return moved[0] if moved else None


def enrollments_complete(*, at_by_id: dict[int, datetime.datetime]) -> list[Enrollment]:
    """Stamp `completed_at` on each enrollment of `at_by_id` whose last step went out while it was
    still active (sent or opened, not unsubscribed), once; records `enrollment.completed` for each.
    """
    if not at_by_id:
        return []
    with transaction.atomic():
        completed = _enrollments_stamp(
            at_by_id=at_by_id,
            column="completed_at",
            sets={"updated_at": timezone.now()},
            where="completed_at IS NULL AND unsubscribed_at IS NULL AND status IN (%s, %s)",
            where_params=[Status.SENT, Status.OPENED],
        )
        _record_events([(events.ENROLLMENT_COMPLETED, enrollment, None) for enrollment in completed])
    return completed


def enrollment_unsubscribe(*, enrollment_id: int, at: datetime.datetime | None = None) -> Enrollment | None:
    """Stop the sequence: stamp `unsubscribed_at` once; None when it already was."""
    with transaction.atomic():
        moved = _enrollments_stamp(
            at_by_id={enrollment_id: at or timezone.now()},
            column="unsubscribed_at",
            sets={"updated_at": timezone.now()},
            where="unsubscribed_at IS NULL",
            where_params=[],
        )
        _record_events([(events.ENROLLMENT_UNSUBSCRIBED, enrollment, None) for enrollment in moved])
    return moved[0] if moved else None


def enrollments_unsubscribe_contact(*, contact: Contact, at: datetime.datetime | None = None) -> list[Enrollment]:
    """Stop every enrollment of `contact` that is not stopped yet (one event each)."""
    with transaction.atomic():
        ids = list(
            Enrollment.objects.filter(contact=contact, unsubscribed_at__isnull=True).values_list("id", flat=True)
        )
        stopped = [enrollment_unsubscribe(enrollment_id=pk, at=at) for pk in ids]
    return [e for e in stopped if e is not None]


# --- enrolling -----------------------------------------------------------------------------------------


@dataclass
class EnrollResult:
    enrolled: int
    batches: int
    batch_size: int
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _lock_for_enrolling(campaign: Campaign) -> tuple[Campaign, Outreach | None]:
    """Lock the campaign row and, when its outreach keeps contacts unique, the outreach row.

    Always in that order, so concurrent enrolls into one campaign, or into
    sibling campaigns of a `unique_contacts` outreach, run one after the other:
    the sibling check of one sees what the other enrolled.
    """
    locked = Campaign.objects.select_for_update(of=("self",)).select_related("outreach").get(pk=campaign.pk)
    if locked.outreach is None or not locked.outreach.unique_contacts:
        return locked, None
    return locked, Outreach.objects.select_for_update().get(pk=locked.outreach_id)


def _refuse_unsubscribed(contact: Contact) -> None:
    if not contact.subscribed:
        raise ApplicationError(
            "The contact is unsubscribed and cannot be enrolled.", code="contact_unsubscribed", status_code=422
        )


def _refuse_sibling(campaign: Campaign, outreach: Outreach | None, contact: Contact) -> None:
    """422 `contact_in_sibling_campaign` when a `unique_contacts` outreach has the contact in another campaign."""
    if (
        outreach is not None
        and Enrollment.objects.filter(contact=contact, campaign__outreach=outreach).exclude(campaign=campaign).exists()
    ):
        raise ApplicationError(
            SKIP_REASONS[EnrollmentSkip.Kind.CROSS_CAMPAIGN_DUPLICATE] + ".",
            code="contact_in_sibling_campaign",
            status_code=422,
        )


def enrollment_enroll_contact(
    *, campaign: Campaign, contact: Contact, batch_number: int = 0, priority: bool = False
) -> Enrollment:
    """Enroll one contact.

    Raises 422 `contact_unsubscribed`, `contact_already_enrolled`, or
    `contact_in_sibling_campaign` (enrolled in another campaign of an outreach
    with `unique_contacts`).
    """
    _refuse_unsubscribed(contact)
    created_at = PRIORITY_CREATED_AT if priority else timezone.now()
    try:
        with transaction.atomic():
            locked, outreach = _lock_for_enrolling(campaign)
            _refuse_sibling(locked, outreach, contact)
            if Enrollment.objects.filter(campaign=locked, contact=contact).exists():
                # Any round: a later one (a /v1 re-enroll) may be left after round 1 was deleted.
                raise IntegrityError
            return Enrollment.objects.create(
                campaign=locked, contact=contact, batch_number=batch_number, created_at=created_at
            )
    except IntegrityError:
        raise ApplicationError(
            "The contact is already enrolled in this campaign.", code="contact_already_enrolled", status_code=422
        ) from None


def enrollment_start(
    *,
    campaign: Campaign,
    contact: Contact,
    dispatch_batch: Callable[[Any, int], None] | None = None,
    now: datetime.datetime | None = None,
) -> Enrollment:
    """Enroll one contact so that its sequence starts as soon as the campaign sends (the /v1 compat enroll).

    The contact may be in the campaign once at a time: refused with 422
    `contact_already_enrolled` while its latest enrollment there is active
    (`selectors.ACTIVE`) or finished within `RECENTLY_FINISHED`; one that
    finished earlier is enrolled again, as the next `round`. Also raises 422
    `contact_unsubscribed` and `contact_in_sibling_campaign` like
    `enrollment_enroll_contact`.

    On a campaign not yet dispatched (pending) the enrollment joins its lowest
    batch (batch 1 when it has none), so the campaign's first dispatch takes it.
    On a dispatched campaign (active, completed, paused) it gets a batch of its
    own, after the highest; on an active or completed one that batch is handed
    after the commit to `dispatch_batch(campaign_id, batch_number)` (the
    sending engine's, which sits above enrollments: `mailing.tasks
    .dispatch_batch_soon` schedules step 1 behind what is already scheduled,
    within the credentials' daily limits, rolling to the next day with room);
    on a paused one it waits for a dispatch of its batch.
    Concurrent calls for one campaign run one after the other (its row is locked).
    """
    _refuse_unsubscribed(contact)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            locked, outreach = _lock_for_enrolling(campaign)
            _refuse_sibling(locked, outreach, contact)
            latest = (
                Enrollment.objects.filter(campaign=locked, contact=contact)
                .annotate(active=ExpressionWrapper(ACTIVE, output_field=BooleanField()), ended_at=ENDED_AT)
                .order_by("-round")
                .values("round", "active", "ended_at")
                .first()
            )
            if latest and (latest["active"] or latest["ended_at"] >= now - RECENTLY_FINISHED):
                raise IntegrityError  # answered below, like the unique constraint's refusal
            batches = Enrollment.objects.filter(campaign=locked).values_list("batch_number", flat=True)
            dispatch = locked.status != Campaign.Status.PENDING
            if dispatch:
                batch = (batches.order_by("-batch_number").first() or 0) + 1
            else:
                batch = batches.order_by("batch_number").first()
                batch = 1 if batch is None else batch
            enrollment = Enrollment.objects.create(
                campaign=locked,
                contact=contact,
                batch_number=batch,
                round=latest["round"] + 1 if latest else 1,
                created_at=now,
            )
            if dispatch_batch and locked.status in (Campaign.Status.ACTIVE, Campaign.Status.COMPLETED):
                transaction.on_commit(lambda: dispatch_batch(locked.pk, batch))
    except IntegrityError:
        raise ApplicationError(
            "The contact is already enrolled in this campaign, or finished it less than 12 hours ago.",
            code="contact_already_enrolled",
            status_code=422,
        ) from None
    return enrollment


def enrollment_delete(*, enrollment: Enrollment) -> None:
    """Delete the enrollment with every send of it (scheduled ones included, so none goes out), at once.

    The send outbox's rows cascade from their enrollment in the same
    transaction; a send a worker already holds finds its row gone and is not
    sent (the worker's claim is a conditional UPDATE of that row).
    """
    with transaction.atomic():
        Enrollment.objects.select_for_update().filter(pk=enrollment.pk).first()
        enrollment.delete()


_CANDIDATES_SQL = """
CREATE TEMP TABLE enroll_candidates AS
SELECT c.id AS contact_id, c.email AS email, c.created_at AS created_at,
       CASE
         WHEN EXISTS (SELECT 1 FROM enrollments_enrollment e
                      WHERE e.campaign_id = %(campaign_id)s AND e.contact_id = c.id)
           THEN 'already_enrolled'
         WHEN %(outreach_id)s IS NOT NULL AND EXISTS (
                SELECT 1 FROM enrollments_enrollment e
                JOIN campaigns_campaign sibling ON sibling.id = e.campaign_id
                WHERE sibling.outreach_id = %(outreach_id)s AND sibling.id <> %(campaign_id)s
                  AND e.contact_id = c.id)
           THEN 'cross_campaign_duplicate'
         WHEN c.id IN (SELECT contact_id FROM enroll_mx_invalid)
           THEN 'mx_invalid'
       END AS skip_kind
FROM contacts_contactimportmember m
JOIN contacts_contact c ON c.id = m.contact_id
WHERE m.contact_import_id = %(import_id)s AND c.subscribed AND c.account_id = %(account_id)s
"""

_INSERT_ENROLLMENTS_SQL = """
INSERT INTO enrollments_enrollment
    (uuid, campaign_id, contact_id, status, batch_number, created_at, updated_at)
SELECT gen_random_uuid(), %(campaign_id)s, contact_id, 'pending',
       %(first_batch)s + (ROW_NUMBER() OVER (ORDER BY created_at, contact_id) - 1) / %(batch_size)s,
       %(now)s, %(now)s
FROM enroll_candidates WHERE skip_kind IS NULL
ORDER BY created_at, contact_id
ON CONFLICT (campaign_id, contact_id, round) DO NOTHING
"""

_INSERT_SKIPS_SQL = """
INSERT INTO enrollments_enrollmentskip (id, campaign_id, contact_id, email, kind, reason, created_at)
SELECT gen_random_uuid(), %(campaign_id)s, c.contact_id, c.email, c.skip_kind,
       COALESCE(r.reason, ''), %(now)s
FROM enroll_candidates c LEFT JOIN enroll_mx_invalid r ON r.contact_id = c.contact_id
WHERE c.skip_kind IS NOT NULL
ON CONFLICT (campaign_id, contact_id, kind) DO NOTHING
"""


def _mx_invalid_contacts(*, contact_import: ContactImport, campaign: Campaign) -> list[tuple[Any, str]]:
    """(contact id, reason) for the import's contacts whose domain provably takes no mail.

    Resolved before any lock is taken: DNS may take seconds.
    """
    if not campaign.verify_email_mx:
        return []
    emails = list(contact_import.contacts.filter(subscribed=True).values_list("id", "email"))
    verdicts = check_domains(domain_of(email) for _, email in emails)
    invalid = []
    for contact_id, email in emails:
        verdict = verdicts[domain_of(email)]
        if verdict.status == MxStatus.INVALID:
            invalid.append((contact_id, f"No MX record for {domain_of(email)}: {verdict.reason}"[:255]))
    return invalid


def enrollments_enroll_import(
    *, campaign: Campaign, contact_import: ContactImport, batch_size: int = 50
) -> EnrollResult:
    """Enroll every subscribed contact of the import not yet in the campaign, in a few statements.

    Batches are numbered after the campaign's highest batch so far. Skips (already
    enrolled, enrolled in a sibling campaign of a `unique_contacts` outreach, no MX
    when `verify_email_mx`) are recorded once each and reported. The campaign row
    (and a `unique_contacts` outreach's row) is locked for the write, so concurrent
    enrolls run one after the other and never duplicate an enrollment or a skip.
    """
    mx_invalid = _mx_invalid_contacts(contact_import=contact_import, campaign=campaign)
    with transaction.atomic(), connection.cursor() as cursor:
        locked, outreach = _lock_for_enrolling(campaign)
        highest = (
            Enrollment.objects.filter(campaign=locked).order_by("-batch_number").values_list("batch_number", flat=True)
        ).first() or 0
        params = {
            "campaign_id": locked.pk,
            "outreach_id": outreach.pk if outreach else None,
            "import_id": contact_import.pk,
            "account_id": locked.account_id,
            "first_batch": highest + 1,
            "batch_size": batch_size,
            "now": timezone.now(),
        }
        cursor.execute("CREATE TEMP TABLE enroll_mx_invalid (contact_id uuid, reason varchar(255))")
        if mx_invalid:
            cursor.executemany("INSERT INTO enroll_mx_invalid VALUES (%s, %s)", mx_invalid)
        cursor.execute(_CANDIDATES_SQL, params)
        cursor.execute(_INSERT_ENROLLMENTS_SQL, params)
        enrolled = max(cursor.rowcount, 0)
        cursor.execute(_INSERT_SKIPS_SQL, params)
        cursor.execute(
            "SELECT c.contact_id, c.email, c.skip_kind, r.reason FROM enroll_candidates c "
            "LEFT JOIN enroll_mx_invalid r ON r.contact_id = c.contact_id "
            "WHERE c.skip_kind IS NOT NULL ORDER BY c.created_at, c.contact_id"
        )
        skipped = [
            {"contact_id": str(contact_id), "email": email, "reason": reason or SKIP_REASONS[kind]}
            for contact_id, email, kind, reason in cursor.fetchall()
        ]
        cursor.execute("DROP TABLE enroll_candidates")
        cursor.execute("DROP TABLE enroll_mx_invalid")
    batches = -(-enrolled // batch_size)
    return EnrollResult(enrolled=enrolled, batches=batches, batch_size=batch_size, skipped=skipped)
