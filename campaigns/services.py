"""Writes for outreaches and campaigns.

Validation errors are reported all at once, in `ValidationFailed.details`
keyed by the path of the offending value in the request body: `name`,
`sequence_steps` (the list as a whole), `sequence_steps[1].delay_minutes`
(0-based index into the list as sent), `smtp_credentials[0].smtp_port`.
Nothing is written when anything is refused.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from accounts.models import Account
from core.errors import ApplicationError, ValidationFailed
from mailboxes.models import Mailbox, looks_like_address
from mailboxes.services import mailbox_reenable

from .models import Campaign, Outreach, SequenceStep, SmtpCredential

UPDATABLE_FIELDS = (
    "name",
    "min_wait_seconds",
    "max_wait_seconds",
    "outreach_id",
    "verify_email_mx",
    "bounce_rate_threshold",
    "track_clicks",
)
CAMPAIGN_OPTIONS = ("min_wait_seconds", "max_wait_seconds", "verify_email_mx", "bounce_rate_threshold", "track_clicks")
STEP_FIELDS = ("position", "subject", "body_html", "body_text", "delay_minutes")
# The seed's nested credential fields that are the mailbox's settings (`from_email` is its `email`).
MAILBOX_SETTINGS = {
    "from_email": "email",
    "from_name": "from_name",
    "smtp_host": "smtp_host",
    "smtp_port": "smtp_port",
    "smtp_username": "smtp_username",
    "smtp_password": "smtp_password",
    "smtp_security": "smtp_security",
    "daily_limit": "daily_limit",
    "imap_host": "imap_host",
    "imap_port": "imap_port",
    "imap_username": "imap_username",
    "imap_password": "imap_password",
}
CREDENTIAL_OWN_FIELDS = ("label", "campaign_daily_limit")
CREDENTIAL_FIELDS = (*CREDENTIAL_OWN_FIELDS, "mailbox_id", *MAILBOX_SETTINGS)


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        first_path, messages = next(iter(errors.items()))
        raise ValidationFailed(f"{first_path}: {messages[0]}", details=errors)


def _check(
    errors: dict[str, list[str]], instance, *, prefix: str = "", exclude: tuple[str, ...] = (), rename=None
) -> None:
    """Run the model's validators and `clean()`, filing messages under `prefix` + field (`rename`d)."""
    rename = {"outreach": "outreach_id", **(rename or {})}
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            if field == NON_FIELD_ERRORS:
                key = prefix.rstrip(".") or "non_field_errors"
            else:
                key = f"{prefix}{rename.get(field, field)}"
            errors.setdefault(key, []).extend(messages)


def _owned_outreach(account: Account, outreach_id: Any, errors: dict[str, list[str]]) -> Outreach | None:
    if outreach_id in (None, ""):
        return None
    try:
        return Outreach.objects.get(account=account, pk=uuid.UUID(str(outreach_id)))
    except (ValueError, Outreach.DoesNotExist):
        errors.setdefault("outreach_id", []).append("No outreach with this id.")
        return None


def _existing(model, campaign: Campaign) -> dict[str, Any]:
    """The campaign's stored steps or credentials by id (none for a campaign not saved yet)."""
    if campaign._state.adding:
        return {}
    return {str(obj.pk): obj for obj in model.objects.filter(campaign_id=campaign.pk)}


def _listed(model, key: str, index: int, data: dict, existing: dict, seen: set, errors: dict):
    """The stored object an item names by `id` (None: a new one, or an error filed)."""
    if data.get("id") in (None, ""):
        return None
    found = existing.get(str(data["id"]))
    if found is None:
        errors.setdefault(f"{key}[{index}].id", []).append(
            f"No {model._meta.verbose_name} with this id in this campaign."
        )
    elif found.pk in seen:
        errors.setdefault(f"{key}[{index}].id", []).append("Listed twice.")
        found = None
    else:
        seen.add(found.pk)
    return found


def _build_steps(campaign: Campaign, steps: list[dict[str, Any]], errors: dict) -> list[SequenceStep]:
    existing, seen = _existing(SequenceStep, campaign), set()
    built = []
    for index, data in enumerate(steps):
        values = {k: v for k, v in data.items() if k in STEP_FIELDS and v is not None}
        values.setdefault("position", index + 1)
        step = _listed(SequenceStep, "sequence_steps", index, data, existing, seen, errors)
        if step is None:
            step = SequenceStep(campaign=campaign, **values)
        else:
            for key, value in values.items():
                setattr(step, key, value)
        _check(errors, step, prefix=f"sequence_steps[{index}].", exclude=("campaign",))
        built.append(step)
    positions = sorted(s.position for s in built if isinstance(s.position, int))
    if not built:
        errors.setdefault("sequence_steps", []).append("At least one sequence step is required.")
    elif positions != list(range(1, len(built) + 1)):
        errors.setdefault("sequence_steps", []).append(
            f"Step positions must be unique and contiguous from 1 (1..{len(built)}); got {positions}."
        )
    return built


class _MailboxesInPlay:
    """The account's mailboxes a credential list names, found once each and shared by the items naming them."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.by_id: dict[Any, Mailbox] = {}
        self.by_address: dict[str, Mailbox] = {}

    def _keep(self, mailbox: Mailbox) -> Mailbox:
        if mailbox.pk in self.by_id and not mailbox._state.adding:
            return self.by_id[mailbox.pk]
        self.by_id[mailbox.pk] = mailbox
        if mailbox.email:
            self.by_address.setdefault(mailbox.email.lower(), mailbox)
        return mailbox

    def by_pk(self, mailbox_id: Any) -> Mailbox | None:
        try:
            key = uuid.UUID(str(mailbox_id))
        except ValueError:
            return None
        if key not in self.by_id:
            found = Mailbox.objects.filter(account=self.account, pk=key).first()
            if found is None:
                return None
            self._keep(found)
        return self.by_id[key]

    def by_email(self, address: str) -> Mailbox | None:
        key = address.strip().lower()
        if key not in self.by_address:
            found = Mailbox.objects.filter(account=self.account, email__iexact=key).first()
            if found is None:
                return None
            self._keep(found)
        return self.by_address[key]

    def register_address(self, mailbox: Mailbox) -> None:
        """A new or renamed mailbox's address, so a later item with the same address finds it."""
        if mailbox.email:
            self.by_address.setdefault(mailbox.email.lower(), mailbox)

    def new(self) -> Mailbox:
        return self._keep(Mailbox(account=self.account))

    def stored(self, mailbox: Mailbox) -> Mailbox:
        return self._keep(mailbox)


def _sole_user(mailbox: Mailbox, credential: SmtpCredential) -> bool:
    """Whether `credential` is the only use of `mailbox` (so changing its address renames it, nobody else's)."""
    return not SmtpCredential.objects.filter(mailbox=mailbox).exclude(pk=credential.pk).exists()


def _credential_mailbox(
    mailboxes: _MailboxesInPlay, credential: SmtpCredential, data: dict[str, Any], prefix: str, errors: dict
) -> Mailbox | None:
    """The mailbox an item means: named by `mailbox_id`, else the account's one with its sending address
    (the stored credential's own when the item changes no address), else a new one."""
    settings = {MAILBOX_SETTINGS[k]: v for k, v in data.items() if k in MAILBOX_SETTINGS}
    if data.get("mailbox_id") not in (None, ""):
        mailbox = mailboxes.by_pk(data["mailbox_id"])
        if mailbox is None:
            errors.setdefault(f"{prefix}mailbox_id", []).append("No mailbox with this id in this account.")
        return mailbox
    stored = None if credential._state.adding else mailboxes.stored(credential.mailbox)
    username = settings.get("smtp_username") or ""
    address = settings.get("email") or (username.strip() if looks_like_address(username) else "")
    if address:
        found = mailboxes.by_email(address)
        if found is not None:
            return found
        if stored is not None and (not stored.email or _sole_user(stored, credential)):
            return stored  # its address changes with this item
        return mailboxes.new()
    return stored if stored is not None else mailboxes.new()


def _apply_mailbox_settings(mailbox: Mailbox, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key not in MAILBOX_SETTINGS:
            continue
        if value is None:
            value = None if key == "imap_port" else ""
        if key == "imap_port" and value == "":
            value = None
        setattr(mailbox, MAILBOX_SETTINGS[key], value)


def _build_credentials(
    campaign: Campaign, credentials: list[dict[str, Any]], errors: dict
) -> tuple[list[SmtpCredential], list[Mailbox]]:
    """The credential list as it would be stored, and the mailboxes it creates or changes.

    Each item names the mailbox it uses (module docstring of `mailboxes.models`): by `mailbox_id`,
    or by its sending address, the mailbox created when the account has none; the item's settings
    (the seed's fields) update that mailbox, and a secret left out keeps the stored one.
    """
    existing, seen = _existing(SmtpCredential, campaign), set()
    mailboxes = _MailboxesInPlay(campaign.account)
    built, used_by = [], {}
    for index, data in enumerate(credentials):
        prefix = f"smtp_credentials[{index}]."
        credential = _listed(SmtpCredential, "smtp_credentials", index, data, existing, seen, errors)
        if credential is None:
            credential = SmtpCredential(campaign=campaign)
        for key in CREDENTIAL_OWN_FIELDS:
            if key in data:
                setattr(credential, key, data[key] if data[key] is not None or key != "label" else "")
        mailbox = _credential_mailbox(mailboxes, credential, data, prefix, errors)
        if mailbox is None:
            continue
        _apply_mailbox_settings(mailbox, data)
        _check(errors, mailbox, prefix=prefix, exclude=("account",), rename={"email": "from_email"})
        if mailbox._state.adding and not mailbox.is_oauth2 and not mailbox.smtp_password:
            # A mailbox the account has no other way to sign in with; an existing one keeps its password.
            errors.setdefault(f"{prefix}smtp_password", []).append("This field is required.")
        mailboxes.register_address(mailbox)
        if id(mailbox) in used_by:
            errors.setdefault(f"{prefix}mailbox_id", []).append(
                f"Uses the same mailbox as smtp_credentials[{used_by[id(mailbox)]}]."
            )
        used_by.setdefault(id(mailbox), index)
        credential.mailbox = mailbox
        _check(errors, credential, prefix=prefix, exclude=("campaign", "mailbox"))
        built.append(credential)
    if not credentials:  # not `errors`: it holds the other lists' problems too
        errors.setdefault("smtp_credentials", []).append("At least one SMTP credential is required.")
    return built, list(mailboxes.by_id.values())


def _apply_fields(campaign: Campaign, data: dict[str, Any], errors: dict) -> list[str]:
    """Set `data` (`UPDATABLE_FIELDS`) on `campaign` and check it; returns the model fields set."""
    changed = []
    for key, value in data.items():
        if key == "outreach_id":
            campaign.outreach = _owned_outreach(campaign.account, value, errors)
            changed.append("outreach")
        elif value is None:
            errors[key] = ["This field may not be null."]
        else:
            setattr(campaign, key, value)
            changed.append(key)
    _check(errors, campaign, exclude=("account", "outreach"))
    return changed


def _plan(
    campaign: Campaign,
    data: dict[str, Any],
    sequence_steps: list[dict[str, Any]] | None,
    smtp_credentials: list[dict[str, Any]] | None,
) -> tuple[list[str], list[SequenceStep] | None, tuple[list[SmtpCredential], list[Mailbox]] | None]:
    """Everything a write would change, checked; raises `ValidationFailed` with every problem found."""
    message = f"Not updatable; updatable fields: {', '.join(UPDATABLE_FIELDS)}."
    _raise_if({key: [message] for key in data if key not in UPDATABLE_FIELDS})
    errors: dict[str, list[str]] = {}
    changed = _apply_fields(campaign, data, errors)
    steps = None if sequence_steps is None else _build_steps(campaign, sequence_steps, errors)
    credentials = None if smtp_credentials is None else _build_credentials(campaign, smtp_credentials, errors)
    _raise_if(errors)
    return changed, steps, credentials


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
    _plan(copy.copy(campaign), data or {}, sequence_steps, smtp_credentials)


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
        mailbox.save()


def _write_credentials(campaign: Campaign, planned: tuple[list[SmtpCredential], list[Mailbox]]) -> None:
    """Make the planned credentials the campaign's: the stored ones not listed go, the listed ones are saved."""
    credentials, mailboxes = planned
    _write_mailboxes(mailboxes)
    stored = [credential for credential in credentials if not credential._state.adding]
    SmtpCredential.objects.filter(campaign=campaign).exclude(pk__in=[c.pk for c in stored]).delete()
    for credential in stored:
        credential.save(update_fields=[*CREDENTIAL_OWN_FIELDS, "mailbox", "updated_at"])
    SmtpCredential.objects.bulk_create([c for c in credentials if c._state.adding])


def _lock_mailbox_addresses(account: Account) -> None:
    """Serialise the account's writes that may create mailboxes: two creating the same address would collide."""
    Account.objects.select_for_update().filter(pk=account.pk).values_list("pk", flat=True).first()


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
    _lock_mailbox_addresses(account)
    _, steps, credentials = _plan(campaign, data, sequence_steps, smtp_credentials)
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
        _lock_mailbox_addresses(campaign.account)
    if sequence_steps is not None or smtp_credentials is not None:
        # Two editors replacing the lists at once would interleave their deletes and position moves.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    changed, steps, credentials = _plan(campaign, data, sequence_steps, smtp_credentials)
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
    _check(errors, outreach, exclude=("account",))
    _raise_if(errors)
    outreach.save()
    return outreach


@transaction.atomic
def outreach_update(*, outreach: Outreach, data: dict[str, Any]) -> Outreach:
    """Change `name` and/or `unique_contacts`."""
    changed = [key for key in ("name", "unique_contacts") if key in data]
    for key in changed:
        setattr(outreach, key, data[key])
    errors: dict[str, list[str]] = {}
    _check(errors, outreach, exclude=("account",))
    _raise_if(errors)
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
