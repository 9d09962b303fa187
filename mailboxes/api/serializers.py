"""Input and output shapes of /api/mailboxes. Secrets are write-only: no answer ever carries one."""

from rest_framework import serializers

from core.serializers import StrictInputSerializer
from mailboxes.models import Mailbox

IMAP_STATUSES = ["not_configured", "never_polled", "ok", "failing"]


class MailboxCreateInputSerializer(StrictInputSerializer):
    email = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=254,
        help_text="The sending address (unique per account). Default: smtp_username, when it is an address; "
        "required for auth_kind oauth2.",
    )
    from_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    auth_kind = serializers.ChoiceField(
        choices=Mailbox.AuthKind.choices,
        required=False,
        default=Mailbox.AuthKind.PASSWORD,
        help_text="`password` (SMTP and IMAP passwords), or `oauth2` (Google or Microsoft: connect it with "
        "POST /api/mailboxes/{id}/oauth/start after creating it).",
    )
    oauth_provider = serializers.ChoiceField(
        choices=Mailbox.Provider.choices, required=False, allow_blank=True, help_text="Required for oauth2."
    )
    smtp_host = serializers.CharField(
        required=False, max_length=255, help_text="Required for password; oauth2: the provider's."
    )
    smtp_port = serializers.IntegerField(required=False, help_text="Required for password; oauth2: the provider's.")
    smtp_username = serializers.CharField(
        required=False, max_length=255, help_text="Required for password; oauth2: the address."
    )
    smtp_password = serializers.CharField(
        required=False, write_only=True, trim_whitespace=False, help_text="Stored encrypted, never shown."
    )
    smtp_security = serializers.ChoiceField(
        choices=Mailbox.Security.choices, required=False, help_text="Default: ssl on port 465, else starttls."
    )
    daily_limit = serializers.IntegerField(
        required=False, help_text="First messages a day, shared by every campaign using it; default 200."
    )
    imap_host = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    imap_port = serializers.IntegerField(required=False, allow_null=True, help_text="Default 993 with a host.")
    imap_username = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    imap_password = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, write_only=True, trim_whitespace=False
    )

    def validate(self, attrs):
        if attrs.get("auth_kind") == Mailbox.AuthKind.OAUTH2:
            missing = [name for name in ("email", "oauth_provider") if not attrs.get(name)]
            refused = [name for name in ("smtp_password", "imap_password") if attrs.get(name)]
            errors = {name: ["Required for an oauth2 mailbox."] for name in missing}
            errors.update({name: ["An oauth2 mailbox signs in with its grant, not a password."] for name in refused})
        else:
            required = ("smtp_host", "smtp_port", "smtp_username", "smtp_password")
            errors = {name: ["This field is required."] for name in required if name not in attrs}
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class MailboxUpdateInputSerializer(StrictInputSerializer):
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    from_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    smtp_host = serializers.CharField(required=False, max_length=255)
    smtp_port = serializers.IntegerField(required=False)
    smtp_username = serializers.CharField(required=False, max_length=255)
    smtp_password = serializers.CharField(
        required=False, write_only=True, trim_whitespace=False, help_text="Changes only when given."
    )
    smtp_security = serializers.ChoiceField(choices=Mailbox.Security.choices, required=False)
    daily_limit = serializers.IntegerField(required=False)
    imap_host = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    imap_port = serializers.IntegerField(required=False, allow_null=True)
    imap_username = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    imap_password = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        write_only=True,
        trim_whitespace=False,
        help_text="Changes only when given; empty removes it.",
    )


class MailboxSerializer(serializers.Serializer):
    """A mailbox without its secrets: whether IMAP and OAuth2 are set up instead."""

    id = serializers.UUIDField()
    email = serializers.CharField()
    from_name = serializers.CharField()
    display_name = serializers.CharField()
    auth_kind = serializers.ChoiceField(choices=Mailbox.AuthKind.choices)
    oauth_provider = serializers.CharField(help_text="`google` or `microsoft` for oauth2; empty otherwise.")
    oauth_connected_at = serializers.DateTimeField(allow_null=True, help_text="When access was last granted.")
    oauth_token_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When the current access token expires (it is refreshed before)."
    )
    oauth_revoked_at = serializers.DateTimeField(
        allow_null=True, help_text="When the provider refused a refresh: reconnect the mailbox."
    )
    smtp_host = serializers.CharField()
    smtp_port = serializers.IntegerField()
    smtp_username = serializers.CharField()
    smtp_security = serializers.ChoiceField(choices=Mailbox.Security.choices)
    daily_limit = serializers.IntegerField()
    imap_host = serializers.CharField()
    imap_port = serializers.IntegerField(allow_null=True)
    imap_username = serializers.CharField()
    imap_configured = serializers.BooleanField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField(
        help_text="Why it is disabled: which campaign's bounce rate, a revoked OAuth2 grant, or an operator."
    )
    ready = serializers.BooleanField(source="is_ready", help_text="False: nothing can be sent through it yet.")
    not_ready_reason = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MailboxUserSerializer(serializers.Serializer):
    credential_id = serializers.UUIDField(source="pk", help_text="The campaign's credential on this mailbox.")
    campaign_id = serializers.UUIDField()
    name = serializers.CharField(source="campaign.name")
    kind = serializers.CharField(source="campaign.kind", help_text="`campaign` or `journey`.")
    status = serializers.CharField(source="campaign.status")
    campaign_daily_limit = serializers.IntegerField(allow_null=True)


class MailboxForecastDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    total = serializers.IntegerField(help_text="Messages scheduled that day, every step.")
    first_messages = serializers.IntegerField(help_text="Step-1 messages, what the daily limit counts.")
    daily_limit = serializers.IntegerField()
    by_campaign = serializers.DictField(child=serializers.IntegerField(), help_text="Messages per campaign id.")


class MailboxDetailSerializer(MailboxSerializer):
    """The mailbox view: its settings, usage and health, who uses it, and what it will send."""

    sent_today = serializers.IntegerField(help_text="First messages sent since midnight (account time zone).")
    reserved_today = serializers.IntegerField(help_text="What the daily limit counted today (sent, or in flight).")
    remaining_today = serializers.IntegerField()
    messages_sent = serializers.IntegerField(help_text="Every message handed to a server through it, ever.")
    bounces = serializers.IntegerField()
    bounce_rate = serializers.FloatField(help_text="Bounces over messages sent, %, over every campaign.")
    imap_status = serializers.ChoiceField(choices=IMAP_STATUSES)
    imap_last_polled_at = serializers.DateTimeField(allow_null=True)
    imap_last_error = serializers.CharField(allow_null=True)
    imap_next_attempt_at = serializers.DateTimeField(allow_null=True)
    used_by = MailboxUserSerializer(many=True, help_text="The campaigns and journeys sending through it.")
    forecast = MailboxForecastDaySerializer(many=True, help_text="The next 14 days, today first.")


class MailboxOAuthStartSerializer(serializers.Serializer):
    authorization_url = serializers.URLField(help_text="Send the mailbox's owner here to grant access.")
    redirect_uri = serializers.URLField(help_text="Where the provider sends them back (register it with it).")
