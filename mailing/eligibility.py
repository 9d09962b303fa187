"""May this send go out now? The one rule, asked by the claim, the pre-send check and the `sending` commit.

`CONDITIONS` lists what a claimed row needs to be handed to the server, in
the order a refusal is explained: still claimed by this worker, campaign
active, mailbox enabled and ready, enrollment eligible for this step, contact
subscribed. Each is one boolean SQL expression on the row (aliased `s`)
with its refusal code and the outcome of a row it refuses:

- the beat tick claims due rows whose campaign is active and mailbox
  enabled (`CLAIMABLE`: what makes a row wait rather than be refused);
- the worker's pre-check (`eligible_ids`) and the per-message `sending`
  commit (`mailing.sending`) require them all (`where(CONDITIONS)`);
- `refusal` evaluates them one by one for a refused row and turns the
  first that fails into its outcome (deferred, put back or canceled).

The enrollment's eligible statuses depend on the step: `pending` for the
first message, `sent` or `opened` for a follow-up. The per-message statement
takes them as parameters (`STEP_PARAMS`), so it never looks up the step.
Subqueries rather than joins: each is a primary-key lookup, and they drop
into any statement over `mailing_scheduledsend s`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection

from enrollments.models import Enrollment

from .models import ScheduledSend
from .outcomes import CREDENTIAL_DISABLED, FIRST_STEP_UNKNOWN, Kind, Outcome

# The enrollment statuses a step may be sent in, as the parameters of `ENROLLMENT_ELIGIBLE`, by whether
# the step is the first message: `pending` for step 1, `sent` or `opened` for a follow-up.
STEP_PARAMS = {
    True: {"eligible_a": Enrollment.Status.PENDING, "eligible_b": Enrollment.Status.PENDING},
    False: {"eligible_a": Enrollment.Status.SENT, "eligible_b": Enrollment.Status.OPENED},
}


@dataclass(frozen=True)
class Facts:
    """What explaining a refusal reads about the row, besides which conditions it fails."""

    row: ScheduledSend
    day: datetime.date
    campaign_status: str | None
    enrollment_status: str | None


@dataclass(frozen=True)
class Condition:
    code: str  # the refusal code: the `Outcome.reason` of a row this condition refuses
    sql: str  # true when the row passes; NULL counts as failing
    refuse: Callable[[Facts, str], Outcome]  # the outcome of a row it refuses, given the facts and `code`


def _lost(facts: Facts, code: str) -> Outcome:
    """No longer this worker's to send (a reaper or an operator got there first): nothing to write."""
    return Outcome(kind=Kind.LOST, row=facts.row, reason=code)


# Put back to `scheduled` as it was: the tick claims it again once the campaign or the credential is back.
def _campaign_inactive(facts: Facts, code: str) -> Outcome:
    return Outcome(kind=Kind.REQUEUED, row=facts.row, reason=code, error=f"campaign {facts.campaign_status}")


def _credential_disabled(facts: Facts, code: str) -> Outcome:
    return Outcome(kind=Kind.REQUEUED, row=facts.row, reason=code, error="mailbox disabled")


def _stop(facts: Facts, code: str) -> Outcome:
    """The enrollment will not take this step: the rest of its sequence is canceled."""
    return Outcome(
        kind=Kind.CANCELED, row=facts.row, reason=code, error=f"enrollment stopped ({facts.enrollment_status})"
    )


def _stop_or_wait(facts: Facts, code: str) -> Outcome:
    """Canceled, unless it is a follow-up whose enrollment still waits for its first message: deferred."""
    row = facts.row
    if facts.enrollment_status != Enrollment.Status.PENDING or row.step.position == 1:
        return _stop(facts, code)
    first = ScheduledSend.objects.filter(enrollment_id=row.enrollment_id, step__position=1).first()
    if first is not None and first.status == ScheduledSend.Status.UNKNOWN:
        # Only an operator can settle step 1 (release or cancel it): look again in a few hours.
        return Outcome(
            kind=Kind.DEFERRED,
            row=row,
            day=facts.day,
            reason=FIRST_STEP_UNKNOWN,
            error="step 1's outcome is unknown: waiting for an operator to release or cancel it",
        )
    # Its first message has not gone out yet (deferred or retrying): wait for it.
    return Outcome(kind=Kind.DEFERRED, row=row, day=facts.day, reason="first_step_pending", error="step 1 not sent yet")


CLAIMED_BY_WORKER = Condition("not_claimed", "s.status = 'queued' AND s.claimed_by = %(worker)s", _lost)
CAMPAIGN_ACTIVE = Condition(
    "campaign_inactive",
    "(SELECT c.status FROM campaigns_campaign c WHERE c.id = s.campaign_id) = 'active'",
    _campaign_inactive,
)
MAILBOX_ENABLED = Condition(
    CREDENTIAL_DISABLED,
    # A mailbox not ready (`Mailbox.not_ready_reason`: no sender address, an OAuth2 grant not given yet)
    # waits like a disabled one.
    "(SELECT m.disabled_at IS NULL AND m.email <> '' AND (m.auth_kind = 'password' OR m.oauth_refresh_token <> '')"
    " FROM campaigns_smtpcredential k JOIN mailboxes_mailbox m ON m.id = k.mailbox_id"
    " WHERE k.id = s.smtp_credential_id)",
    _credential_disabled,
)
ENROLLMENT_ELIGIBLE = Condition(
    "enrollment_ineligible",
    "(SELECT e.status FROM enrollments_enrollment e WHERE e.id = s.enrollment_id AND e.unsubscribed_at IS NULL)"
    " IN (%(eligible_a)s, %(eligible_b)s)",
    _stop_or_wait,
)
CONTACT_SUBSCRIBED = Condition(
    "contact_unsubscribed",
    "(SELECT ct.subscribed FROM enrollments_enrollment e JOIN contacts_contact ct ON ct.id = e.contact_id"
    " WHERE e.id = s.enrollment_id)",
    _stop,
)

CONDITIONS = (CLAIMED_BY_WORKER, CAMPAIGN_ACTIVE, MAILBOX_ENABLED, ENROLLMENT_ELIGIBLE, CONTACT_SUBSCRIBED)
# A due row the tick leaves waiting (paused campaign, disabled mailbox) rather than claims and refuses.
CLAIMABLE = (CAMPAIGN_ACTIVE, MAILBOX_ENABLED)


def where(conditions: tuple[Condition, ...]) -> str:
    """The conditions as one SQL predicate on `s` (parameters: `eligibility_params`)."""
    return "\n    AND ".join(f"({condition.sql})" for condition in conditions)


def eligibility_params(*, worker: str) -> dict[bool, dict[str, Any]]:
    """The parameters of `where(CONDITIONS)` for `worker`'s rows, by whether the row is a first message."""
    return {first_message: {"worker": worker, **params} for first_message, params in STEP_PARAMS.items()}


def eligible_ids(rows: list[ScheduledSend], worker: str) -> set[Any]:
    """The rows that pass every condition now, in one query per kind of step (first message, follow-up).

    A pre-check before any SMTP envelope; the authoritative check is the `sending` commit.
    """
    ids: set[Any] = set()
    with connection.cursor() as cursor:
        for first_message, params in eligibility_params(worker=worker).items():
            batch = [row.pk for row in rows if (row.step.position == 1) == first_message]
            if batch:
                cursor.execute(
                    f"SELECT s.id FROM mailing_scheduledsend s WHERE s.id = ANY(%(ids)s) AND {where(CONDITIONS)}",
                    {"ids": batch, **params},
                )
                ids.update(pk for (pk,) in cursor)
    return ids


_REFUSAL_SQL = f"""
SELECT {", ".join(f"COALESCE(({condition.sql}), false)" for condition in CONDITIONS)},
    (SELECT c.status FROM campaigns_campaign c WHERE c.id = s.campaign_id),
    (SELECT e.status FROM enrollments_enrollment e WHERE e.id = s.enrollment_id)
FROM mailing_scheduledsend s WHERE s.id = %(id)s
"""


def refusal(*, row: ScheduledSend, day: datetime.date, worker: str) -> Outcome:
    """Why the row may not be sent, as the outcome to record: that of the first condition it fails.

    A row that passes them all again (a campaign resumed since the check, say) is put back
    (`requeued`) for the next tick.
    """
    params = {"id": row.pk, **eligibility_params(worker=worker)[row.step.position == 1]}
    with connection.cursor() as cursor:
        cursor.execute(_REFUSAL_SQL, params)
        found = cursor.fetchone()
    if found is None:  # deleted with its enrollment or campaign
        return _lost(Facts(row=row, day=day, campaign_status=None, enrollment_status=None), CLAIMED_BY_WORKER.code)
    *passed, campaign_status, enrollment_status = found
    facts = Facts(row=row, day=day, campaign_status=campaign_status, enrollment_status=enrollment_status)
    for condition, ok in zip(CONDITIONS, passed, strict=True):
        if not ok:
            return condition.refuse(facts, condition.code)
    return Outcome(kind=Kind.REQUEUED, row=row, reason="eligible_again", error="eligible again: put back")
