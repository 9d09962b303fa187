"""Writes for mailboxes: create, change, delete, and the health switches every campaign shares.

Validation errors are reported all at once in `ValidationFailed.details`,
keyed by field name, with the model's own rules (`Mailbox.clean`), which
the campaigns' nested credentials meet too. Secrets change only when given.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from core.errors import ApplicationError, ValidationFailed

from . import oauth
from .models import Mailbox

SETTINGS = (
    "email",
    "from_name",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_security",
    "daily_limit",
    "imap_host",
    "imap_port",
    "imap_username",
    "imap_password",
)


def _raise_if_invalid(mailbox: Mailbox) -> None:
    try:
        mailbox.full_clean(exclude=["account"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        details = {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in exc.message_dict.items()}
        first, messages = next(iter(details.items()))
        raise ValidationFailed(f"{first}: {messages[0]}", details=details) from None
    if mailbox.email and (
        Mailbox.objects.filter(account_id=mailbox.account_id, email__iexact=mailbox.email)
        .exclude(pk=mailbox.pk)
        .exists()
    ):
        raise ApplicationError(
            f"The account already has a mailbox sending as {mailbox.email}.",
            code="mailbox_exists",
            status_code=409,
            details={"email": ["A mailbox with this address exists."]},
        )


def _lock_account(account_id: Any) -> None:
    """Serialise the account's writes that may create an address: two creating the same one would collide."""
    Account.objects.select_for_update().filter(pk=account_id).values_list("pk", flat=True).first()


def _apply(mailbox: Mailbox, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if value is None:
            value = None if key == "imap_port" else ""
        setattr(mailbox, key, value)


@transaction.atomic
def mailbox_create(*, account: Account, **data: Any) -> Mailbox:
    """A password mailbox (or, with `auth_kind="oauth2"` and `oauth_provider`, one awaiting its grant).

    Raises `ValidationFailed` (422) with every problem found, 409
    `mailbox_exists` when the account has a mailbox with this address.
    """
    unknown = sorted(set(data) - {*SETTINGS, "auth_kind", "oauth_provider"})
    if unknown:
        raise TypeError(f"mailbox_create() got unexpected fields {unknown}")
    _lock_account(account.pk)
    mailbox = Mailbox(account=account)
    _apply(mailbox, data)
    _raise_if_invalid(mailbox)
    mailbox.save()
    return mailbox


@transaction.atomic
def mailbox_update(*, mailbox: Mailbox, data: dict[str, Any]) -> Mailbox:
    """Change the settings in `data` (`SETTINGS`); a secret changes only when given.

    The change applies to every campaign and journey using the mailbox.
    Raises as `mailbox_create` does.
    """
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise TypeError(f"mailbox_update() got unexpected fields {unknown}")
    _lock_account(mailbox.account_id)
    _apply(mailbox, data)
    _raise_if_invalid(mailbox)
    mailbox.save()
    return mailbox


@transaction.atomic
def mailbox_delete(*, mailbox: Mailbox) -> None:
    """Delete a mailbox no campaign or journey uses; 409 `mailbox_in_use` otherwise (naming them)."""
    users = list(mailbox.credentials.select_related("campaign").order_by("campaign__name"))
    if users:
        names = ", ".join(sorted({c.campaign.name for c in users}))
        raise ApplicationError(
            f"The mailbox is used by {names}; remove it from them first.",
            code="mailbox_in_use",
            status_code=409,
            details={"campaign_ids": sorted({str(c.campaign_id) for c in users})},
        )
    mailbox.delete()


def mailbox_mark_revoked(*, mailbox_id: Any) -> None:
    """Remember that the provider refused the grant (shown as unauthorized until the mailbox is reconnected)."""
    Mailbox.objects.filter(pk=mailbox_id, oauth_revoked_at__isnull=True).update(oauth_revoked_at=timezone.now())


def mailbox_mark_disabled(*, mailbox_id: Any, reason: str) -> bool:
    """Disable the mailbox everywhere it is used, once; False when it was disabled already.

    `mailing.services.mailbox_disable` adds what disabling means for the
    sends (moved to each campaign's other mailboxes) and the events.
    """
    return bool(
        Mailbox.objects.filter(pk=mailbox_id, disabled_at__isnull=True).update(
            disabled_at=timezone.now(), disabled_reason=reason[:500], updated_at=timezone.now()
        )
    )


@transaction.atomic
def mailbox_reenable(*, mailbox: Mailbox) -> Mailbox:
    """Put the mailbox back in rotation for every campaign and journey using it (no-op when enabled)."""
    Mailbox.objects.filter(pk=mailbox.pk).update(disabled_at=None, disabled_reason="", updated_at=timezone.now())
    mailbox.refresh_from_db(fields=["disabled_at", "disabled_reason", "updated_at"])
    return mailbox


def revoked_reason(mailbox: Mailbox, exc: Exception) -> str:
    """The disabled reason of a mailbox whose OAuth2 grant no longer works: what happened and what to do."""
    provider = Mailbox.Provider(mailbox.oauth_provider).label if mailbox.oauth_provider else "The provider"
    return (
        f"{provider} refused to refresh the OAuth2 access ({exc}): consent was revoked or expired. "
        "Reconnect the mailbox (Connect with OAuth2 on its page, or POST /api/mailboxes/{id}/oauth/start), "
        "then re-enable it."
    )


def mailbox_access_token(*, mailbox: Mailbox) -> str:
    """A current OAuth2 access token for the mailbox, refreshed first when it expires within the margin.

    The refresh runs under the mailbox's row lock, so concurrent workers
    refresh once and the others read the new token. Raises
    `oauth.OAuthRevoked` (the caller disables the mailbox: it must be
    reconnected) or `oauth.OAuthUnavailable` (transient: try again later).
    """
    margin = datetime.timedelta(seconds=settings.OAUTH_REFRESH_MARGIN_SECONDS)
    if _token_fresh(mailbox, margin):
        return mailbox.oauth_access_token
    try:
        with transaction.atomic():
            locked = _refreshed(mailbox, margin)
    except oauth.OAuthRevoked:
        mailbox_mark_revoked(mailbox_id=mailbox.pk)
        raise
    for name in ("oauth_access_token", "oauth_refresh_token", "oauth_token_expires_at"):
        setattr(mailbox, name, getattr(locked, name))
    return mailbox.oauth_access_token


def _refreshed(mailbox: Mailbox, margin: datetime.timedelta) -> Mailbox:
    """The mailbox read under its row lock, its token refreshed unless another worker just did."""
    locked = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    if not _token_fresh(locked, margin):
        if not locked.oauth_refresh_token:
            raise oauth.OAuthRevoked("no refresh token: the mailbox was never connected")
        token = oauth.refresh_access_token(locked.oauth_provider, refresh_token=locked.oauth_refresh_token)
        locked.oauth_access_token = token.access_token
        locked.oauth_refresh_token = token.refresh_token or locked.oauth_refresh_token
        locked.oauth_token_expires_at = token.expires_at
        locked.save(update_fields=["oauth_access_token", "oauth_refresh_token", "oauth_token_expires_at"])
    return locked


def _token_fresh(mailbox: Mailbox, margin: datetime.timedelta) -> bool:
    return bool(
        mailbox.oauth_access_token
        and mailbox.oauth_token_expires_at
        and mailbox.oauth_token_expires_at - margin > timezone.now()
    )
