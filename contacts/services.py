"""Writes for contacts and contact imports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from core.errors import ApplicationError, ValidationFailed

from .emails import InvalidEmail, normalize_email
from .importing import ImportRows, clean_custom_fields, upsert_import_contacts
from .models import NAME_MAX_LENGTH, Contact, ContactImport

PROFILE_FIELDS = ("first_name", "last_name", "company")


def _clean_profile(values: dict[str, Any]) -> dict[str, Any]:
    cleaned = {}
    for name in PROFILE_FIELDS:
        if name in values:
            value = values[name]
            cleaned[name] = "" if value is None else str(value).strip()
            if len(cleaned[name]) > NAME_MAX_LENGTH:
                raise ValidationFailed(
                    f"{name} is longer than {NAME_MAX_LENGTH} characters.",
                    details={name: [f"Ensure this field has no more than {NAME_MAX_LENGTH} characters."]},
                )
    return cleaned


def _clean_email(raw: object) -> str:
    try:
        return normalize_email(raw)
    except InvalidEmail as exc:
        raise ValidationFailed(f"email: {exc}", details={"email": [str(exc)]}) from None


def _clean_custom(custom: dict[str, Any] | None) -> dict[str, str]:
    try:
        return clean_custom_fields(custom or {})
    except ValueError as exc:
        raise ValidationFailed(str(exc), details={"custom_fields": [str(exc)]}) from None


def _email_taken(email: str) -> ApplicationError:
    return ApplicationError(
        f"A contact with the email {email} already exists.",
        code="contact_already_exists",
        status_code=409,
        details={"email": [f"A contact with the email {email} already exists."]},
    )


def contact_create(
    *,
    account: Account,
    email: str,
    first_name: str = "",
    last_name: str = "",
    company: str = "",
    custom_fields: dict[str, Any] | None = None,
    subscribed: bool = True,
) -> Contact:
    """A new contact. Raises 409 `contact_already_exists` when the email is taken."""
    email = _clean_email(email)
    profile = _clean_profile({"first_name": first_name, "last_name": last_name, "company": company})
    try:
        with transaction.atomic():
            return Contact.objects.create(
                account=account,
                email=email,
                custom_fields=_clean_custom(custom_fields),
                subscribed=subscribed,
                unsubscribed_at=None if subscribed else timezone.now(),
                **profile,
            )
    except IntegrityError:
        raise _email_taken(email) from None


def contact_update(*, contact: Contact, data: dict[str, Any]) -> Contact:
    """Apply a partial update. `subscribed=False` stamps `unsubscribed_at`; True clears it.

    `custom_fields` replaces the stored object as a whole.
    """
    changed = []
    if "email" in data:
        contact.email = _clean_email(data["email"])
        changed.append("email")
    for name, value in _clean_profile(data).items():
        setattr(contact, name, value)
        changed.append(name)
    if "custom_fields" in data:
        contact.custom_fields = _clean_custom(data["custom_fields"])
        changed.append("custom_fields")
    if "subscribed" in data and data["subscribed"] != contact.subscribed:
        contact.subscribed = data["subscribed"]
        contact.unsubscribed_at = None if contact.subscribed else timezone.now()
        changed += ["subscribed", "unsubscribed_at"]
    if not changed:
        return contact
    try:
        with transaction.atomic():
            contact.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise _email_taken(contact.email) from None
    return contact


def contact_delete(*, contact: Contact) -> None:
    with transaction.atomic():
        contact.delete()


def contact_import_create(
    *,
    account: Account,
    name: str,
    rows: ImportRows,
    progress: Callable[[int], None] | None = None,
) -> ContactImport:
    """Validate every row, then upsert the valid ones and link them, in one transaction.

    Invalid rows are reported in `invalid_rows` and the rest imported. Rows that
    repeat an email are merged (later non-empty values win). A contact that
    exists is updated and linked, never duplicated; its subscription status is
    never changed by an import, so a re-import cannot resubscribe anyone.
    """
    records, invalid_rows, total_rows = rows.validate(progress=progress)
    with transaction.atomic():
        contact_import = ContactImport.objects.create(
            account=account, name=name[:255], total_rows=total_rows, invalid_rows=invalid_rows
        )
        created, updated = upsert_import_contacts(contact_import=contact_import, records=records)
        contact_import.created, contact_import.updated = created, updated
        contact_import.save(update_fields=["created", "updated"])
    return contact_import
