"""A contact's subscription, with what unsubscribing means for its sequences and its sends.

The contacts app cannot reach enrollments or sends (they build on it), so
unsubscribing lives here, above the send outbox (`services`) and the sent
outcomes (`outcomes`) it uses: the unsubscribe page and provider events
(`inbound`), the contacts API's PATCH and the contact admin all go through
`contact_unsubscribe`, one transaction each.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts import services as contacts_services
from contacts.models import Contact
from enrollments.models import Enrollment
from enrollments.services import enrollments_unsubscribe_contact

from .outcomes import sent_outcomes_settle
from .services import scheduled_sends_cancel_for_enrollment


def contact_unsubscribe(*, contact: Contact, at: datetime.datetime | None = None, settled: bool = False) -> bool:
    """Unsubscribe the contact account-wide, stop every enrollment of it and cancel their remaining sends.

    One transaction. The contact is marked unsubscribed at `at` (its
    account's contacts are unique by email, so this covers every campaign of
    the account), each enrollment not stopped yet is stopped through the state
    machine (one `enrollment.unsubscribed` event each), and every send of the
    contact's enrollments that has not started is canceled. Messages already
    handed to the server are first recorded as sent, unless the caller did so
    (`settled`) before locking any enrollment. Returns whether anything
    changed: repeating it changes nothing.
    """
    at = at or timezone.now()
    enrollment_ids = Enrollment.objects.filter(contact=contact).values_list("id", flat=True)
    with transaction.atomic():
        if not settled:  # a message that went out before the unsubscribe counts as sent first
            sent_outcomes_settle(enrollment_ids=enrollment_ids)
        now = timezone.now()
        flipped = Contact.objects.filter(pk=contact.pk, subscribed=True).update(
            subscribed=False, unsubscribed_at=at, updated_at=now
        )
        stopped = enrollments_unsubscribe_contact(contact=contact, at=at)
        for enrollment_id in enrollment_ids:
            scheduled_sends_cancel_for_enrollment(enrollment_id=enrollment_id, reason="unsubscribed")
    if flipped:
        contact.subscribed, contact.unsubscribed_at, contact.updated_at = False, at, now
    return bool(flipped or stopped)


def contact_update(*, contact: Contact, data: dict[str, Any]) -> Contact:
    """`contacts.services.contact_update`, where `subscribed: false` is a `contact_unsubscribe`; one transaction.

    The contacts API and the contact admin update a contact through here, so
    unsubscribing it stops its sequences as the unsubscribe link does, and a
    refused update (409 `contact_already_exists`, 400 `validation_failed`)
    unsubscribes nothing.
    """
    with transaction.atomic():
        if data.get("subscribed") is False:
            contact_unsubscribe(contact=contact)
        return contacts_services.contact_update(contact=contact, data=data)
