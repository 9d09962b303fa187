"""Reads of mailboxes, always scoped to one account."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Account

from .models import Mailbox


def mailbox_list(*, account: Account) -> QuerySet[Mailbox]:
    """The account's mailboxes with reply detection's state (for `imap_status`), oldest first."""
    return Mailbox.objects.filter(account=account).select_related("imap_sync_state", "account")


def mailbox_users(*, mailbox: Mailbox):
    """The mailbox's credentials (its uses) with their campaign or journey, by name."""
    return mailbox.credentials.select_related("campaign").order_by("campaign__name", "campaign_id")


def mailbox_address_taken(*, account_id, email: str, exclude_pk=None) -> bool:
    """Whether another mailbox of the account sends as `email` (addresses are unique per account, any case)."""
    return Mailbox.objects.filter(account_id=account_id, email__iexact=email.strip()).exclude(pk=exclude_pk).exists()
