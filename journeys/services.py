"""Writes on journeys: create, update, delete, turn on and off, enroll, dispatch.

Every one goes through the campaign services and the send pipeline (module
docstring of `journeys.models`): a journey is created by `campaign_create`,
held and released by `campaign_pause` / `campaign_resume`, and its
enrollments are scheduled by `campaign_dispatch`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from campaigns.models import Campaign, SequenceStep, SmtpCredential
from campaigns.services import campaign_create, campaign_delete, campaign_status_change, campaign_update
from contacts.models import ContactList
from core.errors import ApplicationError, ValidationFailed
from enrollments.models import Enrollment
from mailing.dispatch import campaign_dispatch, undispatched
from mailing.scheduling import campaign_pause, campaign_resume

from .models import ACTIVE_SQL, RECENTLY_COMPLETED, Journey

MAX_CONTACT_ADDRESSES = 1000
MAX_LIST_ADDRESSES = 100
# The body keys of a journey for the campaign service's: its error paths are renamed back.
_KEYS = {"steps": "sequence_steps"}


def _journey_paths(error: ValidationFailed) -> ValidationFailed:
    """The campaign service's error, keyed by the journey's paths (`sequence_steps[0]…` → `steps[0]…`)."""
    details = {}
    for path, messages in (error.details or {}).items():
        for ours, theirs in _KEYS.items():
            if path == theirs or path.startswith((f"{theirs}[", f"{theirs}.")):
                path = ours + path[len(theirs) :]
        details[path] = messages
    return ValidationFailed(str(error.message), details=details)


def journey_create(
    *,
    account: Account,
    name: str,
    steps: list[dict[str, Any]],
    smtp_credentials: list[dict[str, Any]],
    **options: Any,
) -> Journey:
    """A draft journey with its steps and credentials, validated like a campaign's (one transaction).

    Raises `ValidationFailed` keyed by the journey's paths (`steps[1].delay_minutes`).
    """
    try:
        campaign = campaign_create(
            account=account,
            name=name,
            sequence_steps=steps,
            smtp_credentials=smtp_credentials,
            kind=Campaign.Kind.JOURNEY,
            **options,
        )
    except ValidationFailed as error:
        raise _journey_paths(error) from None
    return Journey.objects.get(pk=campaign.pk)


def journey_update(
    *,
    journey: Journey,
    data: dict[str, Any],
    steps: list[dict[str, Any]] | None = None,
    smtp_credentials: list[dict[str, Any]] | None = None,
) -> Journey:
    """Change the journey's fields and, when given, replace its steps or credentials (`campaign_update`)."""
    try:
        campaign_update(campaign=journey, data=data, sequence_steps=steps, smtp_credentials=smtp_credentials)
    except ValidationFailed as error:
        raise _journey_paths(error) from None
    journey.refresh_from_db()
    return journey


def journey_delete(*, journey: Journey) -> None:
    """Delete the journey with its steps, credentials, enrollments and everything scheduled for them."""
    campaign_delete(campaign=journey)


def journey_turn_on(*, journey: Journey) -> Journey:
    """Draft or off → on; on stays on. Turning on again releases the held sends, gaps kept.

    Raises 422 `journey_incomplete` when the journey has no step or no SMTP credential.
    """
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        missing = [
            what
            for what, model in (("a step", SequenceStep), ("an SMTP credential", SmtpCredential))
            if not model.objects.filter(campaign=locked).exists()
        ]
        if missing:
            raise ApplicationError(
                f"The journey needs {' and '.join(missing)} before it can be turned on.",
                code="journey_incomplete",
                details={"missing": missing},
            )
        if locked.status == Campaign.Status.PAUSED:
            campaign_resume(campaign=locked)
        else:
            campaign_status_change(campaign_id=locked.pk, to=Campaign.Status.ACTIVE, sources=(Campaign.Status.PENDING,))
        transaction.on_commit(lambda: _enqueue_dispatch(locked.pk))
    journey.refresh_from_db()
    return journey


def journey_turn_off(*, journey: Journey) -> Journey:
    """On → off: its scheduled sends are held until it is turned on again; off stays off.

    Raises 422 `journey_not_on` for a draft journey.
    """
    with transaction.atomic():
        locked = Journey.objects.select_for_update().get(pk=journey.pk)
        if locked.status == Campaign.Status.PENDING:
            raise ApplicationError("A draft journey is not on; there is nothing to turn off.", code="journey_not_on")
        if locked.status == Campaign.Status.ACTIVE:
            campaign_pause(campaign=locked)
    journey.refresh_from_db()
    return journey


# --- enrolling -----------------------------------------------------------------------------------------


@dataclass
class JourneyEnrollResult:
    enrolled_count: int = 0
    not_found: list[str] = field(default_factory=list)
    already_enrolled: list[str] = field(default_factory=list)
    recently_completed: list[str] = field(default_factory=list)


def _normalized(values: list[str]) -> list[str]:
    """Trimmed, lowercased, de-duplicated, in the order given (the seed's normalization: an address that is
    not valid simply matches nothing)."""
    return list(dict.fromkeys(value.strip().lower() for value in values if value.strip()))


# One statement: the people to enroll (the active contacts named, and the active members of the
# lists), each one's latest enrollment in the journey, a verdict for each, and the new enrollments.
_ENROLL_SQL = f"""
WITH wanted AS (
    SELECT c.id AS contact_id, c.email
    FROM contacts_contact c
    WHERE c.account_id = %(account)s AND c.subscribed AND c.email = ANY(%(emails)s)
    UNION
    SELECT c.id, c.email
    FROM contacts_contactlistmember m JOIN contacts_contact c ON c.id = m.contact_id
    WHERE m.contact_list_id = ANY(%(lists)s) AND c.account_id = %(account)s AND c.subscribed
), judged AS (
    SELECT w.contact_id, w.email, latest.round,
           CASE WHEN latest.active THEN 'already_enrolled'
                WHEN latest.completed_at >= %(recent)s THEN 'recently_completed' END AS verdict
    FROM wanted w LEFT JOIN LATERAL (
        -- Found through the contact's own enrollments (a handful each). The journey is a filter, kept
        -- out of the index conditions on purpose: its enrollments are often newer than the table's
        -- statistics, which then offer a campaign index as "one row" and the lookup reads every
        -- enrollment of the journey for every person (40,000 x 40,000 took minutes in the benchmark).
        SELECT e.round, e.completed_at, {ACTIVE_SQL} AS active
        FROM enrollments_enrollment e
        WHERE e.contact_id = w.contact_id AND (e.campaign_id = %(campaign)s) IS TRUE
        ORDER BY e.round DESC LIMIT 1
    ) latest ON true
), inserted AS (
    INSERT INTO enrollments_enrollment
        (uuid, campaign_id, contact_id, status, batch_number, round, created_at, updated_at)
    SELECT gen_random_uuid(), %(campaign)s, contact_id, 'pending', %(batch)s, COALESCE(round, 0) + 1,
           %(now)s, %(now)s
    FROM judged WHERE verdict IS NULL
    ON CONFLICT (campaign_id, contact_id, round) DO NOTHING
    RETURNING contact_id
)
SELECT (SELECT count(*) FROM inserted),
       COALESCE(array_agg(email ORDER BY email) FILTER (WHERE verdict = 'already_enrolled'), '{{}}'),
       COALESCE(array_agg(email ORDER BY email) FILTER (WHERE verdict = 'recently_completed'), '{{}}'),
       COALESCE(array_agg(email) FILTER (WHERE email = ANY(%(emails)s)), '{{}}')
FROM judged
"""


def _lists_by_address(account: Account, addresses: list[str]) -> list[Any]:
    """The ids of the account's lists with these addresses; 422 `list_not_found` naming the first missing one."""
    found = dict(
        ContactList.objects.filter(account=account, email_address__in=addresses).values_list("email_address", "id")
    )
    for address in addresses:
        if address not in found:
            raise ApplicationError(f"No list found with email address: {address}", code="list_not_found")
    return list(found.values())


def journey_enroll(
    *,
    journey: Journey,
    contact_email_addresses: list[str] | None = None,
    list_email_addresses: list[str] | None = None,
    now: datetime.datetime | None = None,
) -> JourneyEnrollResult:
    """Enroll the named contacts and every member of the named lists, each person once (one transaction).

    Addresses are trimmed and lowercased; people named twice, or by a
    contact address and a list, count once. A person is enrolled when the
    contact is active (subscribed) in the account, not enrolled in the
    journey now, and did not complete it within `RECENTLY_COMPLETED`;
    `not_found` lists the contact addresses (only those) that match no
    active contact. Concurrent calls for one journey run one after the other
    (the journey's row is locked), so nobody is enrolled twice. The new
    enrollments are dispatched after the commit (step 1 due now, paced by
    the journey's jitter and its credentials' daily limits).

    Raises (nothing written): `ValidationFailed` with `base` (no address at
    all) or the parameter over its limit; 422 `journey_not_on` (the message
    names the state); 422 `list_not_found` (the message names the address).
    """
    contacts_given, lists_given = contact_email_addresses or [], list_email_addresses or []
    if not contacts_given and not lists_given:
        raise ValidationFailed(
            "Nothing to enroll.",
            details={"base": ["at least one of contact_email_addresses or list_email_addresses must be provided"]},
        )
    for name, given, limit in (
        ("contact_email_addresses", contacts_given, MAX_CONTACT_ADDRESSES),
        ("list_email_addresses", list_email_addresses or [], MAX_LIST_ADDRESSES),
    ):
        if len(given) > limit:
            raise ValidationFailed(
                f"Too many addresses in {name}.",
                details={name: [f"at most {limit} addresses per request ({len(given)} given)"]},
            )
    emails, list_addresses = _normalized(contacts_given), _normalized(lists_given)
    now = now or timezone.now()
    with transaction.atomic():
        locked = Journey.objects.select_for_update(of=("self",)).select_related("account").get(pk=journey.pk)
        if locked.status != Campaign.Status.ACTIVE:
            raise ApplicationError(
                f"Journey must be in 'on' state to enroll people. Current state: {locked.state}",
                code="journey_not_on",
            )
        list_ids = _lists_by_address(locked.account, list_addresses)
        batch = (
            Enrollment.objects.filter(campaign=locked).order_by("-batch_number").values_list("batch_number", flat=True)
        ).first() or 0
        with connection.cursor() as cursor:
            cursor.execute(
                _ENROLL_SQL,
                {
                    "account": locked.account_id,
                    "campaign": locked.pk,
                    "emails": emails,
                    "lists": list_ids,
                    "recent": now - RECENTLY_COMPLETED,
                    "batch": batch + 1,
                    "now": now,
                },
            )
            enrolled, already, recent, matched = cursor.fetchone()
        if enrolled:
            transaction.on_commit(lambda: _enqueue_dispatch(locked.pk))
    matched_emails = set(matched)
    return JourneyEnrollResult(
        enrolled_count=enrolled,
        not_found=[email for email in emails if email not in matched_emails],
        already_enrolled=list(already),
        recently_completed=list(recent),
    )


# --- dispatching ---------------------------------------------------------------------------------------


def _enqueue_dispatch(journey_id: Any) -> None:
    from .tasks import dispatch_journey_task  # tasks import this module

    dispatch_journey_task.delay(str(journey_id))


def journey_dispatch_pending(*, journey_id: Any) -> int:
    """Schedule every enrollment of an `on` journey that has no send yet, batch by batch; returns how many.

    A day whose slots are taken is no refusal (`roll_over`): the sends start
    on the next day with room. What cannot be scheduled now (the journey
    turned off, the account at its plan limit) stays pending and is picked
    up by the next call (`dispatch_journeys_task` on beat, and every enroll).
    """
    journey = Journey.objects.filter(pk=journey_id, status=Campaign.Status.ACTIVE).first()
    scheduled = 0
    while journey is not None:
        try:
            result = campaign_dispatch(campaign=journey, roll_over=True)
        except ApplicationError:  # nothing left (no_pending_enrollments), paused, plan limit, …
            break
        scheduled += result.scheduled
    return scheduled


def journeys_dispatch_pending() -> int:
    """`journey_dispatch_pending` for every `on` journey with an enrollment that has no send yet.

    Asked journey by journey with dispatch's own "no send yet" (a lookup per enrollment in the send
    index, whatever the statistics say), not one anti-join of every journey's enrollments with the outbox.
    """
    waiting = [
        journey.pk
        for journey in Journey.objects.filter(status=Campaign.Status.ACTIVE).only("pk")
        if undispatched(journey).exists()
    ]
    return sum(journey_dispatch_pending(journey_id=journey_id) for journey_id in waiting)
