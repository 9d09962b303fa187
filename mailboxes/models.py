"""Mailboxes: an account's sender identities, shared by every campaign and journey that sends through them.

A mailbox is identified by its sending address (unique per account, case
insensitive). It holds the SMTP and IMAP settings, the secrets (encrypted at
rest, never shown), the daily limit that every campaign using it shares, and
its health: one disabled state and reason, whichever campaign's bounce-rate
threshold was crossed or whichever OAuth2 refresh failed. A campaign's use of
a mailbox is its `campaigns.SmtpCredential` (the seed's nested shape).

`MailboxDay` is the daily-limit counter: `reserved` moves only by the
conditional UPDATEs of `mailing.limits`, so no number of campaigns or
workers sending through the mailbox can take it past `daily_limit`.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from accounts.models import Account
from core.fields import EncryptedTextField


def looks_like_address(value: str) -> bool:
    local, at, domain = (value or "").rpartition("@")
    return bool(at and local and "." in domain and not any(c.isspace() for c in value))


class Mailbox(models.Model):
    class Security(models.TextChoices):
        STARTTLS = "starttls"
        SSL = "ssl"
        NONE = "none"

    class AuthKind(models.TextChoices):
        PASSWORD = "password"  # noqa: S105 (a kind of sign-in, not a secret)
        OAUTH2 = "oauth2"

    class Provider(models.TextChoices):
        GOOGLE = "google"
        MICROSOFT = "microsoft"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="mailboxes")
    email = models.CharField(
        max_length=254,
        blank=True,
        help_text="The sending address. Defaults to the SMTP username when that is an address; "
        "without one, nothing is sent.",
    )
    from_name = models.CharField(max_length=255, blank=True, default="")
    auth_kind = models.CharField(max_length=8, choices=AuthKind.choices, default=AuthKind.PASSWORD)
    smtp_host = models.CharField(max_length=255)
    smtp_port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    smtp_username = models.CharField(max_length=255)
    smtp_password = EncryptedTextField(blank=True, default="")
    smtp_security = models.CharField(
        max_length=8, choices=Security.choices, blank=True, help_text="Empty: ssl on port 465, starttls otherwise."
    )
    daily_limit = models.PositiveIntegerField(
        default=200,
        validators=[MinValueValidator(1)],
        help_text="First messages per day through this mailbox, shared by every campaign and journey using it.",
    )
    imap_host = models.CharField(max_length=255, blank=True, default="")
    imap_port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    imap_username = models.CharField(max_length=255, blank=True, default="")
    imap_password = EncryptedTextField(blank=True, default="")
    oauth_provider = models.CharField(max_length=16, choices=Provider.choices, blank=True, default="")
    oauth_refresh_token = EncryptedTextField(blank=True, default="")
    oauth_access_token = EncryptedTextField(blank=True, default="")
    oauth_token_expires_at = models.DateTimeField(null=True, blank=True)
    oauth_connected_at = models.DateTimeField(null=True, blank=True)
    oauth_revoked_at = models.DateTimeField(
        null=True, blank=True, help_text="When the provider refused a refresh (consent revoked): reconnect."
    )
    # The PKCE verifier of the authorization started last (`mailboxes.services.mailbox_oauth_start`).
    oauth_code_verifier = EncryptedTextField(blank=True, default="", editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "mailboxes"
        indexes = [models.Index(fields=["account", "created_at", "id"], name="mailbox_account_keyset")]
        constraints = [
            models.UniqueConstraint(
                "account", Lower("email"), condition=~Q(email=""), name="mailbox_unique_email_per_account"
            ),
            models.CheckConstraint(condition=Q(daily_limit__gte=1), name="mailbox_daily_limit_positive"),
            models.CheckConstraint(
                condition=Q(smtp_port__gte=1) & Q(smtp_port__lte=65535), name="mailbox_smtp_port_range"
            ),
            models.CheckConstraint(
                condition=Q(imap_port__isnull=True) | (Q(imap_port__gte=1) & Q(imap_port__lte=65535)),
                name="mailbox_imap_port_range",
            ),
            models.CheckConstraint(
                condition=Q(smtp_security__in=["starttls", "ssl", "none", ""]), name="mailbox_security_known"
            ),
            models.CheckConstraint(
                condition=Q(auth_kind="password") | ~Q(oauth_provider=""), name="mailbox_oauth2_has_provider"
            ),
        ]

    def __str__(self) -> str:
        return self.email or self.smtp_username

    @property
    def is_oauth2(self) -> bool:
        return self.auth_kind == self.AuthKind.OAUTH2

    @property
    def imap_configured(self) -> bool:
        """Reply detection needs a host, a username and a password (or a connected OAuth2 grant)."""
        secret = self.oauth_refresh_token if self.is_oauth2 else self.imap_password
        return bool(self.imap_host and self.imap_username and secret)

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None

    @property
    def display_name(self) -> str:
        return self.from_name or self.email

    @property
    def not_ready_reason(self) -> str | None:
        """Why nothing can be sent through this mailbox yet (None: ready).

        A mailbox may be saved without a sender address (the seed's example
        has an `smtp_username` that is no address and no `from_email`), and
        an OAuth2 mailbox before its owner has granted access; dispatch and
        test sends refuse it until then.
        """
        if not self.email:
            return (
                "No sender address: smtp_username is not an email address and from_email is empty; "
                "set from_email (the address messages are sent from)."
            )
        if self.is_oauth2 and not self.oauth_refresh_token:
            return "OAuth2 access is not granted yet: connect the mailbox (its authorization URL) first."
        return None

    @property
    def is_ready(self) -> bool:
        return self.not_ready_reason is None

    def apply_defaults(self) -> None:
        """Fill `smtp_security` from the port, `email` from an address-like username, `imap_port` from the host."""
        if not self.smtp_security and self.smtp_port:
            self.smtp_security = self.Security.SSL if self.smtp_port == 465 else self.Security.STARTTLS
        if not self.email and looks_like_address(self.smtp_username):
            self.email = self.smtp_username.strip()
        if self.imap_host and not self.imap_port:
            self.imap_port = 993

    def clean(self) -> None:
        self.apply_defaults()
        errors = {}
        # No address at all is accepted: the mailbox is shown not ready (`not_ready_reason`).
        if self.email and not looks_like_address(self.email):
            errors["email"] = ["Enter a valid email address."]
        if any(c in "\r\n" for c in f"{self.email}{self.from_name}"):
            errors.setdefault("from_name", []).append("Line breaks are not allowed in a header.")
        if self.is_oauth2 and not self.oauth_provider:
            errors["oauth_provider"] = ["An OAuth2 mailbox needs its provider (google or microsoft)."]
        if errors:
            raise ValidationError(errors)


class MailboxDay(models.Model):
    """One mailbox's counters for one day (in its account's time zone), across every campaign using it.

    `reserved` is the daily-limit counter (first messages, reserved before
    they are handed over); `sent` and `bounced` count outcomes, the mailbox's
    bounce-rate denominator and numerator for the day.
    """

    id = models.BigAutoField(primary_key=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="days", db_index=False)
    day = models.DateField()
    reserved = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "day"], name="mailbox_day_unique")]

    def __str__(self) -> str:
        return f"{self.mailbox_id} {self.day}: {self.reserved} reserved"
