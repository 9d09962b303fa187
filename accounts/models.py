import secrets
import uuid
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models

from core.fields import EncryptedTextField


def new_inbound_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name.")


class Account(models.Model):
    """A tenant: everything else belongs to exactly one account."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    monthly_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Sends allowed per calendar month. Empty: unlimited. 0: nothing may be sent.",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # Inbound provider webhooks (issue 6): the secret part of the account's
    # SMTP2GO webhook URL (shown in the admin, compared in constant time), and
    # an optional Authorization header value SMTP2GO must send as well.
    inbound_webhook_secret = models.CharField(max_length=64, default=new_inbound_webhook_secret, editable=False)
    inbound_webhook_authorization = EncryptedTextField(
        blank=True, default="", help_text='Optional: "Basic <base64>" or "Bearer <token>" SMTP2GO must send.'
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def inbound_webhook_token(self) -> str:
        """The `<account_token>` of `/api/inbound/smtp2go/<account_token>`: the account id, then the secret."""
        return f"{self.id.hex}{self.inbound_webhook_secret}"

    # DRF's IsAuthenticated reads request.user.is_authenticated; an API
    # request's "user" is the account its key belongs to.
    @property
    def is_authenticated(self) -> bool:
        return True


class ApiKey(models.Model):
    """An API key: only its SHA-256 and a short visible prefix are stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.account})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
