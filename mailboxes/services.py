"""Writes for mailboxes: create, change, delete, and the health switches every campaign shares.

Validation errors are reported all at once in `ValidationFailed.details`,
keyed by field name, with the model's own rules (`Mailbox.clean`), which
the campaigns' nested credentials meet too. Secrets change only when given.
"""

from __future__ import annotations

import copy
import datetime
import secrets
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from core.errors import ApplicationError, ValidationFailed

from . import oauth
from .models import Mailbox
from .selectors import mailbox_address_taken

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


# Each stored secret and the settings that say where it is sent: a change of those needs the secret
# again, or an API key could point a mailbox at its own server and collect the password.
SECRET_DESTINATIONS = {
    "smtp_password": ("smtp_host", "smtp_port", "smtp_username", "smtp_security"),
    "imap_password": ("imap_host", "imap_port", "imap_username"),
}
# An OAuth2 mailbox's bearer token only ever goes to its provider's servers.
PROVIDER_SERVERS = ("smtp_host", "smtp_port", "smtp_security", "imap_host", "imap_port")


def _compared(name: str, mailbox: Mailbox) -> Any:
    value = getattr(mailbox, name)
    return value.strip().lower() if name in CASELESS and isinstance(value, str) else value


CASELESS = ("email", "smtp_host", "smtp_username", "imap_host", "imap_username")  # DNS names and logins


def mailbox_change_problems(*, stored: Mailbox, data: dict[str, Any]) -> dict[str, list[str]]:
    """What a change of a stored mailbox may not do, by field: send a stored secret (a password, an
    OAuth2 token) to another server or login than the one it was given for."""
    # Both sides with their defaults filled (a port's security, IMAP's 993), so a default is no change.
    before, after = copy.copy(stored), copy.copy(stored)
    before.apply_defaults()
    mailbox_settings_apply(after, {name: value for name, value in data.items() if name in SETTINGS})
    after.apply_defaults()
    changed = [name for name in SETTINGS if _compared(name, after) != _compared(name, before)]
    if stored.is_oauth2:
        return {
            name: ["An OAuth2 mailbox signs in to its provider's servers; they cannot be changed."]
            for name in changed
            if name in PROVIDER_SERVERS
        }
    errors = {}
    for secret, destination in SECRET_DESTINATIONS.items():
        moved = [name for name in changed if name in destination]
        if moved and getattr(stored, secret) and not data.get(secret):
            errors[secret] = [
                f"Required when {', '.join(moved)} change: a stored password is only sent where it was given for."
            ]
    return errors


def _raise_if_invalid(mailbox: Mailbox) -> None:
    try:
        mailbox.full_clean(exclude=["account"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        details = {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in exc.message_dict.items()}
        first, messages = next(iter(details.items()))
        raise ValidationFailed(f"{first}: {messages[0]}", details=details) from None
    if mailbox.email and mailbox_address_taken(
        account_id=mailbox.account_id, email=mailbox.email, exclude_pk=mailbox.pk
    ):
        raise ApplicationError(
            f"The account already has a mailbox sending as {mailbox.email}.",
            code="mailbox_exists",
            status_code=409,
            details={"email": ["A mailbox with this address exists."]},
        )


def mailbox_addresses_lock(*, account_id: Any) -> None:
    """Serialise the account's writes that may create or change a mailbox address (this API's, and a
    campaign's nested credentials): two creating the same one would collide on the unique address."""
    Account.objects.select_for_update().filter(pk=account_id).values_list("pk", flat=True).first()


def mailbox_settings_apply(mailbox: Mailbox, data: dict[str, Any]) -> None:
    """Set `data` on the unsaved `mailbox` as the forms and payloads give it: null or an empty IMAP port is
    no port, any other null an empty text. Checked and saved by the caller."""
    for key, value in data.items():
        if value is None or (key == "imap_port" and value == ""):
            value = None if key == "imap_port" else ""
        setattr(mailbox, key, value)


def _provider(name: str) -> oauth.Provider:
    try:
        return oauth.provider(name)
    except oauth.OAuthNotConfigured as exc:
        raise ApplicationError(str(exc), code="oauth_not_configured", details={"oauth_provider": [str(exc)]}) from None


@transaction.atomic
def mailbox_create(*, account: Account, **data: Any) -> Mailbox:
    """A password mailbox, or with `auth_kind="oauth2"` and `oauth_provider` one awaiting its grant.

    An OAuth2 mailbox takes its SMTP and IMAP hosts from the provider's
    settings and its address as both usernames, unless given; it is not
    ready until `mailbox_oauth_complete` stores its grant. Raises
    `ValidationFailed` (422) with every problem found, 422
    `oauth_not_configured` for a provider this server has no client for,
    409 `mailbox_exists` when the account has a mailbox with this address.
    """
    unknown = sorted(set(data) - {*SETTINGS, "auth_kind", "oauth_provider"})
    if unknown:
        raise TypeError(f"mailbox_create() got unexpected fields {unknown}")
    if data.get("auth_kind") == Mailbox.AuthKind.OAUTH2:
        conf = _provider(data.get("oauth_provider") or "")
        address = (data.get("email") or "").strip()
        defaults = {
            "smtp_host": conf.smtp_host,
            "smtp_port": conf.smtp_port,
            "smtp_security": Mailbox.Security.STARTTLS if conf.smtp_port != 465 else Mailbox.Security.SSL,
            "smtp_username": address,
            "imap_host": conf.imap_host,
            "imap_port": conf.imap_port,
            "imap_username": address,
        }
        data = {**defaults, **{k: v for k, v in data.items() if v not in (None, "")}}
        data.pop("smtp_password", None)
        data.pop("imap_password", None)
    mailbox_addresses_lock(account_id=account.pk)
    mailbox = Mailbox(account=account)
    mailbox_settings_apply(mailbox, data)
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
    mailbox_addresses_lock(account_id=mailbox.account_id)
    problems = mailbox_change_problems(stored=mailbox, data=data)
    if problems:
        first, messages = next(iter(problems.items()))
        raise ValidationFailed(f"{first}: {messages[0]}", details=problems)
    mailbox_settings_apply(mailbox, data)
    _raise_if_invalid(mailbox)
    mailbox_save_settings(mailbox)
    return mailbox


def mailbox_save_settings(mailbox: Mailbox) -> None:
    """Save a mailbox's settings (all of a new one); a stored one's health and OAuth2 state are left as they
    are in the database, so a write racing the bounce guard or a token refresh cannot undo them."""
    if mailbox._state.adding:
        mailbox.save()
    else:
        mailbox.save(update_fields=[*SETTINGS, "updated_at"])


@transaction.atomic
def mailbox_delete(*, mailbox: Mailbox) -> None:
    """Delete a mailbox no campaign or journey uses; 409 `mailbox_in_use` otherwise (naming them)."""
    mailbox_addresses_lock(account_id=mailbox.account_id)  # no campaign attaches it meanwhile
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
        "Reconnect the mailbox (Connect with OAuth2 on its page, or POST /api/mailboxes/{id}/oauth/start): "
        "that enables it again."
    )


def mailbox_access_token(*, mailbox: Mailbox) -> str:
    """A current OAuth2 access token for the mailbox, refreshed first when it expires within the margin.

    The refresh runs under the mailbox's OAuth lock (`_oauth_lock`), so
    concurrent workers refresh once and the others read the new token. Raises
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


def _oauth_lock(mailbox_id: Any) -> None:
    """One token request per mailbox at a time (until the transaction ends): a transaction-level advisory lock,
    not the row's, so dispatch, the bounce guard and edits are not held up by a provider's answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('mailbox-oauth:' || %s))", [str(mailbox_id)])


def _refreshed(mailbox: Mailbox, margin: datetime.timedelta) -> Mailbox:
    """The mailbox read under its OAuth lock, its token refreshed unless another worker just did."""
    _oauth_lock(mailbox.pk)
    locked = Mailbox.objects.get(pk=mailbox.pk)
    if not _token_fresh(locked, margin):
        if not locked.oauth_refresh_token:
            raise oauth.OAuthRevoked("no refresh token: the mailbox was never connected")
        token = oauth.refresh_access_token(locked.oauth_provider, refresh_token=locked.oauth_refresh_token)
        locked.oauth_access_token = token.access_token
        locked.oauth_refresh_token = token.refresh_token or locked.oauth_refresh_token
        locked.oauth_token_expires_at = token.expires_at
        locked.save(update_fields=["oauth_access_token", "oauth_refresh_token", "oauth_token_expires_at"])
    return locked


def mailbox_access_token_refused(*, mailbox: Mailbox) -> None:
    """A server refused the access token before its expiry (revoked early): the next use refreshes it first."""
    Mailbox.objects.filter(pk=mailbox.pk).update(oauth_token_expires_at=None)
    mailbox.oauth_token_expires_at = None


def _token_fresh(mailbox: Mailbox, margin: datetime.timedelta) -> bool:
    return bool(
        mailbox.oauth_access_token
        and mailbox.oauth_token_expires_at
        and mailbox.oauth_token_expires_at - margin > timezone.now()
    )


# --- OAuth2: connecting a mailbox ------------------------------------------------------------------------

OAUTH_STATE_SALT = "mailboxes.oauth.state"
OAUTH_STATE_MAX_AGE = 30 * 60  # seconds an operator has to grant access once the flow started


def oauth_redirect_uri() -> str:
    """Where the providers send the operator back: register exactly this URL with Google and Microsoft."""
    return f"{settings.PUBLIC_BASE_URL}/oauth/callback"


@transaction.atomic
def mailbox_oauth_start(*, mailbox: Mailbox) -> str:
    """The provider's authorization URL for the mailbox (PKCE, S256); answers it, writes its verifier.

    The `state` is signed (mailbox id, a nonce) and expires after
    `OAUTH_STATE_MAX_AGE`; the verifier is kept encrypted on the mailbox, so
    only the flow started last can complete. Raises 422 `mailbox_not_oauth2`,
    422 `oauth_not_configured`.
    """
    if not mailbox.is_oauth2:
        raise ApplicationError(
            "This mailbox signs in with a password; OAuth2 is for Google and Microsoft mailboxes "
            "(create one with auth_kind oauth2).",
            code="mailbox_not_oauth2",
        )
    _provider(mailbox.oauth_provider)
    state = signing.dumps({"mailbox": str(mailbox.pk), "nonce": secrets.token_urlsafe(16)}, salt=OAUTH_STATE_SALT)
    url, verifier = oauth.authorization_request(
        mailbox.oauth_provider, redirect_uri=oauth_redirect_uri(), state=state, login_hint=mailbox.email
    )
    Mailbox.objects.filter(pk=mailbox.pk).update(oauth_code_verifier=verifier, updated_at=timezone.now())
    return url


def _refuse_callback(message: str, code: str, status_code: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status_code)


@transaction.atomic
def mailbox_oauth_complete(*, state: str, code: str) -> Mailbox:
    """Trade the provider's code for the mailbox's tokens (the redirect back from the provider).

    Stores the refresh and access tokens encrypted, clears the verifier (a
    code is used once) and any revoked mark; a mailbox disabled because its
    grant was revoked is enabled again, its cause fixed. Raises 400
    `oauth_state_invalid` (forged, expired, or already used), 400
    `oauth_wrong_account` (the ID token names another account than the
    mailbox's address; nothing stored), 400 `oauth_rejected` (the provider
    refused the code), 502
    `oauth_unavailable` (the provider could not be reached).
    """
    try:
        data = signing.loads(state, salt=OAUTH_STATE_SALT, max_age=OAUTH_STATE_MAX_AGE)
    except signing.BadSignature:
        raise _refuse_callback(
            "This authorization link is invalid or expired: start the connection again.", "oauth_state_invalid"
        ) from None
    if data.get("mailbox"):
        _oauth_lock(data["mailbox"])
    mailbox = Mailbox.objects.filter(pk=data.get("mailbox")).first()
    if mailbox is None or not mailbox.oauth_code_verifier:
        raise _refuse_callback(
            "This authorization was already used or replaced by a newer one: start the connection again.",
            "oauth_state_invalid",
        )
    try:
        token = oauth.exchange_code(
            mailbox.oauth_provider,
            code=code,
            code_verifier=mailbox.oauth_code_verifier,
            redirect_uri=oauth_redirect_uri(),
        )
    except oauth.OAuthRejected as exc:
        raise _refuse_callback(f"The provider refused the authorization: {exc}", "oauth_rejected") from None
    except oauth.OAuthUnavailable as exc:
        raise _refuse_callback(f"The provider could not be reached: {exc}", "oauth_unavailable", 502) from None
    if token.account and token.account.lower() != mailbox.email.lower():
        # Another account's grant would send and read mail as someone the mailbox does not say it is.
        raise _refuse_callback(
            f"Access was granted for {token.account}, but this mailbox sends as {mailbox.email}: "
            f"start again and sign in as {mailbox.email}.",
            "oauth_wrong_account",
        )
    now = timezone.now()
    was_revoked = mailbox.oauth_revoked_at is not None
    mailbox.oauth_access_token = token.access_token
    mailbox.oauth_refresh_token = token.refresh_token
    mailbox.oauth_token_expires_at = token.expires_at
    mailbox.oauth_connected_at = now
    mailbox.oauth_revoked_at = None
    mailbox.oauth_code_verifier = ""
    changed = [
        "oauth_access_token",
        "oauth_refresh_token",
        "oauth_token_expires_at",
        "oauth_connected_at",
        "oauth_revoked_at",
        "oauth_code_verifier",
        "updated_at",
    ]
    if was_revoked and mailbox.disabled_at is not None:
        mailbox.disabled_at, mailbox.disabled_reason = None, ""
        changed += ["disabled_at", "disabled_reason"]
    mailbox.save(update_fields=changed)
    return mailbox
