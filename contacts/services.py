"""Writes for contacts and contact imports."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Account
from core.errors import ApplicationError, ValidationFailed

from .emails import InvalidEmail, normalize_email
from .importing import ImportRows, clean_custom_fields, upsert_import_contacts
from .models import NAME_MAX_LENGTH, Contact, ContactImport, ContactList

PROFILE_FIELDS = ("first_name", "last_name", "company", "linkedin_url")


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


def _clean_email(raw: object, *, field: str = "email") -> str:
    try:
        return normalize_email(raw)
    except InvalidEmail as exc:
        raise ValidationFailed(f"{field}: {exc}", details={field: [str(exc)]}) from None


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
    linkedin_url: str = "",
    custom_fields: dict[str, Any] | None = None,
    subscribed: bool = True,
) -> Contact:
    """A new contact. Raises 409 `contact_already_exists` when the email is taken."""
    email = _clean_email(email)
    profile = _clean_profile(
        {"first_name": first_name, "last_name": last_name, "company": company, "linkedin_url": linkedin_url}
    )
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


# --- Contact lists ---------------------------------------------------------------------------------------------


def _clean_list_name(raw: object) -> str:
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        raise ValidationFailed("name: The list needs a name.", details={"name": ["This field may not be blank."]})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(
            f"name is longer than {NAME_MAX_LENGTH} characters.",
            details={"name": [f"Ensure this field has no more than {NAME_MAX_LENGTH} characters."]},
        )
    return name


def _list_address_taken(email_address: str) -> ApplicationError:
    message = f"A list with the email address {email_address} already exists."
    return ApplicationError(message, code="list_already_exists", status_code=409, details={"email_address": [message]})


def contact_list_create(*, account: Account, name: str, email_address: str) -> ContactList:
    """A new, empty list. The address is validated and normalized like a contact's email.

    Raises 422 `validation_failed` for a blank name or an invalid address, and
    409 `list_already_exists` when another list of the account has the address.
    """
    name = _clean_list_name(name)
    email_address = _clean_email(email_address, field="email_address")
    try:
        with transaction.atomic():
            return ContactList.objects.create(account=account, name=name, email_address=email_address)
    except IntegrityError:
        raise _list_address_taken(email_address) from None


def contact_list_update(*, contact_list: ContactList, data: dict[str, Any]) -> ContactList:
    """Apply a partial update of `name` and/or `email_address` (other keys are ignored).

    Raises as `contact_list_create` does.
    """
    changed = []
    if "name" in data:
        contact_list.name = _clean_list_name(data["name"])
        changed.append("name")
    if "email_address" in data:
        contact_list.email_address = _clean_email(data["email_address"], field="email_address")
        changed.append("email_address")
    if not changed:
        return contact_list
    try:
        with transaction.atomic():
            contact_list.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise _list_address_taken(contact_list.email_address) from None
    return contact_list


def contact_list_delete(*, contact_list: ContactList) -> None:
    """Delete the list and its memberships (never the contacts)."""
    with transaction.atomic():
        contact_list.delete()


class MembersChange(NamedTuple):
    """What a members add or remove did: how many rows it wrote, and the inputs that matched no contact."""

    count: int
    not_found_emails: list[str]
    not_found_contact_ids: list[str]


def _member_keys(
    emails: Iterable[str] | None, contact_ids: Iterable[str] | None
) -> tuple[dict[str, bool], dict[uuid.UUID | str, str]]:
    """The inputs of a members add or remove, de-duplicated in the caller's order.

    Emails: {normalized address: whether it is valid}; an invalid one cannot be
    any contact's, so it is reported, not refused, and never sent to the
    database. Ids: {UUID, or the string itself when malformed: as the caller wrote it}.
    """
    by_email: dict[str, bool] = {}
    for raw in emails or ():
        try:
            by_email.setdefault(normalize_email(raw), True)
        except InvalidEmail:
            by_email.setdefault(raw.strip().lower() if isinstance(raw, str) else str(raw), False)
    by_id: dict[uuid.UUID | str, str] = {}
    for raw in contact_ids or ():
        try:
            key: uuid.UUID | str = uuid.UUID(str(raw).strip())
        except ValueError:
            key = str(raw)
        by_id.setdefault(key, str(raw))
    return by_email, by_id


# The contacts of the list's account that the inputs name, by email or by id. Written once for add and
# remove: only this account's contacts ever match, so another account's contact id is "not found".
_MATCHED_CONTACTS = """
    matched AS (
        SELECT c.id, c.email, c.created_at
        FROM contacts_contact c
        WHERE c.account_id = %(account_id)s
          AND (c.email = ANY(%(emails)s::text[]) OR c.id = ANY(%(ids)s::uuid[]))
    )
"""

_MEMBERS_ADD_SQL = f"""
    WITH {_MATCHED_CONTACTS},
    inserted AS (
        INSERT INTO contacts_contactlistmember (contact_list_id, contact_id, created_at)
        SELECT %(list_id)s, m.id, %(now)s FROM matched m ORDER BY m.created_at, m.id
        ON CONFLICT (contact_list_id, contact_id) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted),
           ARRAY(SELECT email FROM matched), ARRAY(SELECT id FROM matched)
"""

_MEMBERS_REMOVE_SQL = f"""
    WITH {_MATCHED_CONTACTS},
    deleted AS (
        DELETE FROM contacts_contactlistmember lm
        USING matched m
        WHERE lm.contact_list_id = %(list_id)s AND lm.contact_id = m.id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM deleted),
           ARRAY(SELECT email FROM matched), ARRAY(SELECT id FROM matched)
"""


def _members_change(
    sql: str, *, contact_list: ContactList, emails: Iterable[str] | None, contact_ids: Iterable[str] | None
) -> MembersChange:
    by_email, by_id = _member_keys(emails, contact_ids)
    query_emails = [email for email, valid in by_email.items() if valid]
    query_ids = [key for key in by_id if isinstance(key, uuid.UUID)]
    matched_emails: set[str] = set()
    matched_ids: set[uuid.UUID] = set()
    count = 0
    if query_emails or query_ids:
        params = {
            "account_id": contact_list.account_id,
            "list_id": contact_list.pk,
            "emails": query_emails,
            "ids": query_ids,
            "now": timezone.now(),
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            count, found_emails, found_ids = cursor.fetchone()
        matched_emails, matched_ids = set(found_emails), set(found_ids)
    return MembersChange(
        count,
        [email for email in by_email if email not in matched_emails],
        [given for key, given in by_id.items() if key not in matched_ids],
    )


def contact_list_members_add(
    *, contact_list: ContactList, emails: Iterable[str] | None = None, contact_ids: Iterable[str] | None = None
) -> MembersChange:
    """Add the account's contacts named by email (trimmed, lowercased) or id; idempotent.

    One INSERT … SELECT … ON CONFLICT DO NOTHING: a contact already on the list
    is left as it is and not counted. Only contacts of the list's own account
    are ever added; an email or id that names none of them (another account's
    contact id, a malformed id or address) is reported in `not_found_*`.
    Returns (added, not_found_emails, not_found_contact_ids).
    """
    return _members_change(_MEMBERS_ADD_SQL, contact_list=contact_list, emails=emails, contact_ids=contact_ids)


def contact_list_members_remove(
    *, contact_list: ContactList, emails: Iterable[str] | None = None, contact_ids: Iterable[str] | None = None
) -> MembersChange:
    """Remove the account's contacts named by email or id from the list; idempotent.

    A contact of the account that is not on the list is simply not counted;
    inputs that name no contact of the account are reported as in
    `contact_list_members_add`. Returns (removed, not_found_emails, not_found_contact_ids).
    """
    return _members_change(_MEMBERS_REMOVE_SQL, contact_list=contact_list, emails=emails, contact_ids=contact_ids)
