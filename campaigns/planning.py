"""What a campaign write would change, checked: the plan `campaigns.services` writes.

Each part of a campaign (its fields, its steps, its credentials and the
mailboxes they name) is built as unsaved objects and checked by the models'
own rules; every problem is filed under the path of the offending value in
the request body (`smtp_credentials[0].smtp_port`), and nothing is written
here. A credential item names its mailbox by `mailbox_id` or by its sending
address (the account's mailbox with that address, created when there is
none), and its settings update that mailbox.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from accounts.models import Account
from core.errors import ValidationFailed
from mailboxes import services as mailbox_services
from mailboxes.models import Mailbox, looks_like_address
from mailboxes.selectors import mailbox_address_taken

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
MAILBOX_SETTINGS = {("from_email" if name == "email" else name): name for name in mailbox_services.SETTINGS}
CREDENTIAL_OWN_FIELDS = ("label", "campaign_daily_limit")
CREDENTIAL_FIELDS = (*CREDENTIAL_OWN_FIELDS, "mailbox_id", *MAILBOX_SETTINGS)


def raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        first_path, messages = next(iter(errors.items()))
        raise ValidationFailed(f"{first_path}: {messages[0]}", details=errors)


def check(
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
        check(errors, step, prefix=f"sequence_steps[{index}].", exclude=("campaign",))
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

    def address_taken(self, mailbox: Mailbox) -> bool:
        """Whether another mailbox (stored, or new in this list) has the address `mailbox` now has."""
        if not mailbox.email:
            return False
        other = self.by_address.get(mailbox.email.lower())
        if other is not None and other is not mailbox:
            return True
        return mailbox_address_taken(account_id=self.account.pk, email=mailbox.email, exclude_pk=mailbox.pk)

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
    settings = _mailbox_settings(data)
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


def _mailbox_settings(data: dict[str, Any]) -> dict[str, Any]:
    """An item's mailbox settings, by the mailbox's field names."""
    return {MAILBOX_SETTINGS[key]: value for key, value in data.items() if key in MAILBOX_SETTINGS}


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
        problems = {}
        if not mailbox._state.adding:
            problems = mailbox_services.mailbox_change_problems(stored=mailbox, data=_mailbox_settings(data))
        mailbox_services.mailbox_settings_apply(mailbox, _mailbox_settings(data))
        check(errors, mailbox, prefix=prefix, exclude=("account",), rename={"email": "from_email"})
        if not any(key.startswith(prefix) for key in errors):  # a value refused already says enough
            for name, messages in problems.items():
                errors.setdefault(f"{prefix}{'from_email' if name == 'email' else name}", []).extend(messages)
        if mailboxes.address_taken(mailbox):
            errors.setdefault(f"{prefix}from_email", []).append(
                f"Another mailbox of the account sends as {mailbox.email}: name it by mailbox_id instead."
            )
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
        check(errors, credential, prefix=prefix, exclude=("campaign", "mailbox"))
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
    check(errors, campaign, exclude=("account", "outreach"))
    return changed


def plan(
    campaign: Campaign,
    data: dict[str, Any],
    sequence_steps: list[dict[str, Any]] | None,
    smtp_credentials: list[dict[str, Any]] | None,
) -> tuple[list[str], list[SequenceStep] | None, tuple[list[SmtpCredential], list[Mailbox]] | None]:
    """Everything a write would change, checked; raises `ValidationFailed` with every problem found."""
    message = f"Not updatable; updatable fields: {', '.join(UPDATABLE_FIELDS)}."
    raise_if({key: [message] for key in data if key not in UPDATABLE_FIELDS})
    errors: dict[str, list[str]] = {}
    changed = _apply_fields(campaign, data, errors)
    steps = None if sequence_steps is None else _build_steps(campaign, sequence_steps, errors)
    credentials = None if smtp_credentials is None else _build_credentials(campaign, smtp_credentials, errors)
    raise_if(errors)
    return changed, steps, credentials
