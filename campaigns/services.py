"""Writes for outreaches and campaigns.

Validation errors are reported all at once, in `ValidationFailed.details`
keyed by the path of the offending value in the request body: `name`,
`sequence_steps` (the list as a whole), `sequence_steps[1].delay_minutes`
(0-based index into the list as sent), `smtp_credentials[0].smtp_port`
(`campaigns.planning` builds and checks what a write would change).
Nothing is written when anything is refused.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from accounts.models import Account
from core.errors import ApplicationError, ValidationFailed
from mailboxes.models import Mailbox
from mailboxes.services import mailbox_addresses_lock, mailbox_reenable, mailbox_save_settings

from .models import Campaign, Outreach, SequenceStep, SmtpCredential
from .planning import (  # noqa: F401 (the field lists are part of this module's API)
    CAMPAIGN_OPTIONS,
    CREDENTIAL_FIELDS,
    CREDENTIAL_OWN_FIELDS,
    MAILBOX_SETTINGS,
    STEP_FIELDS,
    UPDATABLE_FIELDS,
    check,
    plan,
    raise_if,
)


def campaign_validate(
    *,
    campaign: Campaign,
    data: dict[str, Any] | None = None,
    sequence_steps: list[dict[str, Any]] | None = None,
    smtp_credentials: list[dict[str, Any]] | None = None,
) -> None:
    """Check what `campaign_update` (for an unsaved campaign: `campaign_create`) would check; write nothing.

    Takes the same arguments as `campaign_update`; a part left out (None) is
    not checked, so a form can check the part it holds. Raises
    `ValidationFailed` with the same details the write would raise.
    `campaign` is not changed.
    """
    plan(copy.copy(campaign), data or {}, sequence_steps, smtp_credentials)


def _write_steps(campaign: Campaign, steps: list[SequenceStep]) -> None:
    """Make `steps` the campaign's steps: the stored ones not listed go, the listed ones are saved."""
    stored = [step for step in steps if not step._state.adding]
    SequenceStep.objects.filter(campaign=campaign).exclude(pk__in=[s.pk for s in stored]).delete()
    if stored:
        # Positions are unique per campaign and checked row by row: park the kept steps above
        # every final position first, so a swap (1 <-> 2) never meets the other row midway.
        top = SequenceStep.objects.filter(campaign=campaign).aggregate(top=Max("position"))["top"] or 0
        SequenceStep.objects.filter(pk__in=[s.pk for s in stored]).update(position=F("position") + top + len(steps))
        for step in stored:
            step.save(update_fields=[*STEP_FIELDS, "updated_at"])
    SequenceStep.objects.bulk_create([step for step in steps if step._state.adding])


def _write_mailboxes(mailboxes: list[Mailbox]) -> None:
    """Save the mailboxes a credential list creates or changes (secrets not given are the stored values)."""
    for mailbox in mailboxes:
        mailbox_save_settings(mailbox)


def _write_credentials(campaign: Campaign, planned: tuple[list[SmtpCredential], list[Mailbox]]) -> None:
    """Make the planned credentials the campaign's: the stored ones not listed go, the listed ones are saved."""
    credentials, mailboxes = planned
    _write_mailboxes(mailboxes)
    stored = [credential for credential in credentials if not credential._state.adding]
    SmtpCredential.objects.filter(campaign=campaign).exclude(pk__in=[c.pk for c in stored]).delete()
    for credential in stored:
        credential.save(update_fields=[*CREDENTIAL_OWN_FIELDS, "mailbox", "updated_at"])
    SmtpCredential.objects.bulk_create([c for c in credentials if c._state.adding])


@transaction.atomic
def campaign_create(
    *,
    account: Account,
    name: str,
    smtp_credentials: list[dict[str, Any]],
    sequence_steps: list[dict[str, Any]],
    outreach_id: uuid.UUID | str | None = None,
    kind: str = Campaign.Kind.CAMPAIGN,
    **options: Any,
) -> Campaign:
    """A pending campaign with its credentials and steps, all in one transaction.

    `kind` `journey` makes the campaign behind a journey (journeys.services).
    `options` are the campaign's optional fields (`CAMPAIGN_OPTIONS`), model
    defaults otherwise. Raises `ValidationFailed` (nothing written) with every
    problem found, keyed by path (module docstring).
    """
    unknown = sorted(set(options) - set(CAMPAIGN_OPTIONS))
    if unknown:
        raise TypeError(f"campaign_create() got unexpected options {unknown}")
    campaign = Campaign(account=account, kind=kind)
    data = {"name": name, "outreach_id": outreach_id, **{k: v for k, v in options.items() if v is not None}}
    mailbox_addresses_lock(account_id=account.pk)
    _, steps, credentials = plan(campaign, data, sequence_steps, smtp_credentials)
    campaign.save()
    SequenceStep.objects.bulk_create(steps)
    _write_credentials(campaign, credentials)
    return campaign


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    data: dict[str, Any],
    sequence_steps: list[dict[str, Any]] | None = None,
    smtp_credentials: list[dict[str, Any]] | None = None,
) -> Campaign:
    """Change the updatable fields in `data` (`UPDATABLE_FIELDS`); any other key is refused.

    `outreach_id: null` unlinks the campaign from its outreach.
    `sequence_steps` and `smtp_credentials`, when given, are the campaign's
    whole new lists, as `campaign_create` takes them: an item with the `id` of
    one of the campaign's steps (credentials) changes it, an item without one
    adds one, and a stored one left out is deleted, with what hangs on it (a
    deleted step's scheduled sends; a deleted credential's day counters). A
    mailbox's `smtp_password` and `imap_password` change only when an item
    naming it has them. Raises `ValidationFailed` (nothing written) with every
    problem found, keyed by path (module docstring).
    """
    if smtp_credentials is not None:
        mailbox_addresses_lock(account_id=campaign.account_id)
    if sequence_steps is not None or smtp_credentials is not None:
        # Two editors replacing the lists at once would interleave their deletes and position moves.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    changed, steps, credentials = plan(campaign, data, sequence_steps, smtp_credentials)
    try:
        with transaction.atomic():
            if changed:
                campaign.save(update_fields=[*changed, "updated_at"])
            if steps is not None:
                _write_steps(campaign, steps)
            if credentials is not None:
                _write_credentials(campaign, credentials)
    except IntegrityError:  # a concurrent update made the pair invalid (e.g. min > max)
        raise ValidationFailed(
            "The campaign changed meanwhile; the update would break its rules.",
            details={"non_field_errors": ["Conflicting concurrent update; retry."]},
        ) from None
    return campaign


@transaction.atomic
def campaign_delete(*, campaign: Campaign) -> None:
    """Delete the campaign with its steps, credentials, enrollments and skips.

    Everything scheduled for it goes too: the send outbox's rows cascade
    from their enrollment, so nothing is left for a worker to claim.
    """
    campaign.delete()


@transaction.atomic
def smtp_credential_reenable(*, credential: SmtpCredential) -> SmtpCredential:
    """Put the credential's mailbox back in rotation, for every campaign using it (no-op when enabled)."""
    mailbox_reenable(mailbox=credential.mailbox)
    return credential


@transaction.atomic
def outreach_create(*, account: Account, name: str, unique_contacts: bool = False) -> Outreach:
    outreach = Outreach(account=account, name=name, unique_contacts=unique_contacts)
    errors: dict[str, list[str]] = {}
    check(errors, outreach, exclude=("account",))
    raise_if(errors)
    outreach.save()
    return outreach


@transaction.atomic
def outreach_update(*, outreach: Outreach, data: dict[str, Any]) -> Outreach:
    """Change `name` and/or `unique_contacts`."""
    changed = [key for key in ("name", "unique_contacts") if key in data]
    for key in changed:
        setattr(outreach, key, data[key])
    errors: dict[str, list[str]] = {}
    check(errors, outreach, exclude=("account",))
    raise_if(errors)
    if changed:
        outreach.save(update_fields=[*changed, "updated_at"])
    return outreach


@transaction.atomic
def outreach_delete(*, outreach: Outreach) -> None:
    """Delete the outreach; its campaigns stay, unlinked (`outreach_id` becomes null)."""
    outreach.delete()


# Status changes driven by the sending engine (mailing): dispatch activates, the
# operator pauses and resumes, the engine completes. Each is a conditional UPDATE
# so two concurrent callers cannot both make the same change.
CAMPAIGN_TRANSITIONS: dict[str, tuple[str, ...]] = {
    Campaign.Status.ACTIVE: (Campaign.Status.PENDING, Campaign.Status.COMPLETED),
    Campaign.Status.PAUSED: (Campaign.Status.ACTIVE,),
    Campaign.Status.COMPLETED: (Campaign.Status.ACTIVE,),
}


@transaction.atomic
def campaign_status_change(*, campaign_id: Any, to: str, sources: tuple[str, ...] | None = None) -> bool:
    """Move the campaign to `to` when it is in one of `sources` (default: `CAMPAIGN_TRANSITIONS[to]`).

    `active` stamps `activated_at` the first time and clears `completed_at`;
    `completed` stamps `completed_at`. Returns False (nothing changed) when the
    campaign was not in a source state. Resume is `to="active",
    sources=("paused",)`.
    """
    now = timezone.now()
    allowed = sources if sources is not None else CAMPAIGN_TRANSITIONS[to]
    changes: dict[str, Any] = {"status": to, "updated_at": now}
    if to == Campaign.Status.COMPLETED:
        changes["completed_at"] = now
    elif to == Campaign.Status.ACTIVE:
        changes["completed_at"] = None
    moved = Campaign.objects.filter(pk=campaign_id, status__in=allowed).update(**changes)
    if moved and to == Campaign.Status.ACTIVE:
        Campaign.objects.filter(pk=campaign_id, activated_at__isnull=True).update(activated_at=now)
    return bool(moved)


def campaign_require_complete(*, steps: list[SequenceStep], credentials: list[SmtpCredential]) -> None:
    """Refuse to send anything for a campaign that cannot be sent: the one rule of dispatch and test sends.

    Raises 422 `campaign_incomplete` when the campaign has no step, no
    credential, or a credential whose mailbox is not ready (`Mailbox.not_ready_reason`);
    the message names each such credential and what it lacks, and
    `details.smtp_credentials` lists them (`id`, `label`, `not_ready_reason`).
    """
    if not steps or not credentials:
        raise ApplicationError(
            "The campaign needs at least one SMTP credential and one sequence step.", code="campaign_incomplete"
        )
    unready = [c for c in credentials if not c.mailbox.is_ready]
    if unready:
        named = "; ".join(f'SMTP credential "{c}" ({c.pk}) is not ready: {c.mailbox.not_ready_reason}' for c in unready)
        raise ApplicationError(
            named,
            code="campaign_incomplete",
            details={
                "smtp_credentials": [
                    {"id": str(c.pk), "label": c.label, "not_ready_reason": c.mailbox.not_ready_reason} for c in unready
                ]
            },
        )
