"""Input and output shapes of the outreach and campaign endpoints.

Input serializers check types and presence only; value rules (ranges, merge
tags, positions) are the models' and the services'. Validation details of
nested input are flattened to paths, as the services report them:
`sequence_steps[1].delay_minutes` (0-based index), `smtp_credentials`.
"""

from typing import Any

from rest_framework import serializers

from campaigns.models import Campaign, Outreach
from campaigns.services import UPDATABLE_FIELDS
from core.errors import ValidationFailed
from core.serializers import StrictInputSerializer
from mailboxes.models import Mailbox


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error tree as `{path: [messages]}`."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors" and prefix:
                path = prefix
            elif isinstance(key, int) or str(key).isdigit():
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
    elif isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        for index, item in enumerate(detail):
            if item:
                flat.update(flatten_errors(item, f"{prefix}[{index}]"))
    else:
        messages = detail if isinstance(detail, list) else [detail]
        flat.setdefault(prefix or "non_field_errors", []).extend(str(m) for m in messages)
    return flat


class FlatErrorsInputSerializer(StrictInputSerializer):
    @classmethod
    def validate_input(cls, data, **context) -> dict:
        serializer = cls(data=data, context=context)
        if not serializer.is_valid():
            details = flatten_errors(serializer.errors)
            first_path, messages = next(iter(details.items()))
            raise ValidationFailed(f"{first_path}: {messages[0]}", details=details)
        return serializer.validated_data


def unwrap_campaign(data: Any) -> Any:
    """The seed wraps bodies in `{"campaign": {...}}`; a plain body is accepted too."""
    if isinstance(data, dict) and "campaign" in data:
        if len(data) != 1 or not isinstance(data["campaign"], dict):
            raise ValidationFailed(
                'Send the campaign as {"campaign": {...}} or as a plain object.',
                details={"campaign": ["Must be the only key, and an object."]},
            )
        return data["campaign"]
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.", details={"non_field_errors": ["Expected an object."]})
    return data


class SequenceStepInputSerializer(FlatErrorsInputSerializer):
    position = serializers.IntegerField(required=False, help_text="1, 2, 3…; default: the step's place in the list.")
    subject = serializers.CharField(max_length=998, trim_whitespace=False)
    body_html = serializers.CharField(trim_whitespace=False)
    body_text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    delay_minutes = serializers.IntegerField(required=False, default=0, help_text="Wait after the previous step.")


class SmtpCredentialInputSerializer(FlatErrorsInputSerializer):
    """The seed's credential: a mailbox's settings (the account's mailbox with this sending address is
    used and updated, or created), or `mailbox_id` to use one of the account's mailboxes as it is."""

    mailbox_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Use this mailbox of the account (its settings are optional)."
    )
    label = serializers.CharField(required=False, allow_blank=True, max_length=255)
    campaign_daily_limit = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="This campaign's own cap on first messages per day through the mailbox; at least 1. "
        "The mailbox's `daily_limit` is shared by every campaign using it.",
    )
    from_email = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=254,
        help_text="The sending address, which names the mailbox. Default: smtp_username, when it is an address.",
    )
    from_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    smtp_host = serializers.CharField(required=False, max_length=255, help_text="Required without `mailbox_id`.")
    smtp_port = serializers.IntegerField(required=False, help_text="Required without `mailbox_id`.")
    smtp_username = serializers.CharField(required=False, max_length=255, help_text="Required without `mailbox_id`.")
    smtp_password = serializers.CharField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        help_text="Stored encrypted; required without `mailbox_id` for a mailbox the account does not have yet.",
    )
    smtp_security = serializers.ChoiceField(
        choices=Mailbox.Security.choices, required=False, help_text="Default: ssl on port 465, else starttls."
    )
    daily_limit = serializers.IntegerField(
        required=False,
        help_text="The mailbox's daily limit of first messages, shared by every campaign using it; "
        "200 for a new mailbox, unchanged when left out.",
    )
    imap_host = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    imap_port = serializers.IntegerField(required=False, allow_null=True)
    imap_username = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    imap_password = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, write_only=True, trim_whitespace=False
    )

    # Without `mailbox_id` (and, in an update list, without the `id` of a stored credential) these name and set
    # the mailbox. Its password is required only when the account has no mailbox with the address yet, which
    # the service knows (`campaigns.planning._build_credentials`): an existing one keeps its secrets.
    required_for_new = ("smtp_host", "smtp_port", "smtp_username")

    def validate(self, attrs):
        if attrs.get("mailbox_id") is None and attrs.get("id") is None:
            missing = [name for name in self.required_for_new if name not in attrs]
            if missing:
                raise serializers.ValidationError({name: ["This field is required."] for name in missing})
        return attrs


class SendingOptionsMixin(serializers.Serializer):
    """The optional sending settings of a campaign, and of a journey (a campaign of its own kind)."""

    min_wait_seconds = serializers.IntegerField(required=False, help_text="Least random wait between sends; 120.")
    max_wait_seconds = serializers.IntegerField(required=False, help_text="Most random wait between sends; 420.")
    verify_email_mx = serializers.BooleanField(required=False, help_text="Default false.")
    bounce_rate_threshold = serializers.FloatField(required=False, help_text="Percent, in (0, 100]; default 8.0.")
    track_clicks = serializers.BooleanField(required=False, help_text="Default false.")


class CampaignOptionsMixin(SendingOptionsMixin):
    outreach_id = serializers.UUIDField(required=False, allow_null=True)


class CampaignCreateInputSerializer(CampaignOptionsMixin, FlatErrorsInputSerializer):
    name = serializers.CharField(max_length=255)
    smtp_credentials = SmtpCredentialInputSerializer(many=True, allow_empty=False)
    sequence_steps = SequenceStepInputSerializer(many=True, allow_empty=False)


class CampaignUpdateInputSerializer(CampaignOptionsMixin, FlatErrorsInputSerializer):
    name = serializers.CharField(required=False, max_length=255)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            fixed = sorted(set(data) - set(UPDATABLE_FIELDS))
            if fixed:
                message = f"Not updatable; updatable fields: {', '.join(UPDATABLE_FIELDS)}."
                raise serializers.ValidationError({name: [message] for name in fixed})
        return super().to_internal_value(data)


class CampaignCreatedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()


class CampaignListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["id", "name", "status", "outreach_id", "created_at"]
        read_only_fields = fields


# Output serializers of the show path are declared field by field (not
# ModelSerializers): DRF rebuilds a ModelSerializer's fields from the model on
# every use, a measurable share of the endpoint's time.


class SequenceStepSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    position = serializers.IntegerField()
    subject = serializers.CharField()
    body_html = serializers.CharField()
    body_text = serializers.CharField()
    delay_minutes = serializers.IntegerField()


class SmtpCredentialSerializer(serializers.Serializer):
    """A campaign's use of a mailbox, in the seed's shape: the mailbox's settings without its secrets."""

    id = serializers.UUIDField()
    mailbox_id = serializers.UUIDField(help_text="The account's mailbox this credential sends through.")
    label = serializers.CharField()
    campaign_daily_limit = serializers.IntegerField(allow_null=True, help_text="This campaign's own cap, if any.")
    from_email = serializers.CharField(source="mailbox.email")
    from_name = serializers.CharField(source="mailbox.from_name")
    auth_kind = serializers.ChoiceField(choices=Mailbox.AuthKind.choices, source="mailbox.auth_kind")
    smtp_host = serializers.CharField(source="mailbox.smtp_host")
    smtp_port = serializers.IntegerField(source="mailbox.smtp_port")
    smtp_username = serializers.CharField(source="mailbox.smtp_username")
    smtp_security = serializers.ChoiceField(choices=Mailbox.Security.choices, source="mailbox.smtp_security")
    daily_limit = serializers.IntegerField(source="mailbox.daily_limit", help_text="The mailbox's, shared.")
    imap_host = serializers.CharField(source="mailbox.imap_host")
    imap_port = serializers.IntegerField(allow_null=True, source="mailbox.imap_port")
    imap_username = serializers.CharField(source="mailbox.imap_username")
    imap_configured = serializers.BooleanField(source="mailbox.imap_configured")
    disabled_at = serializers.DateTimeField(allow_null=True, source="mailbox.disabled_at")
    disabled_reason = serializers.CharField(source="mailbox.disabled_reason")
    created_at = serializers.DateTimeField()
    ready = serializers.BooleanField(source="mailbox.is_ready", help_text="False: nothing can be sent through it yet.")
    not_ready_reason = serializers.CharField(
        allow_null=True,
        source="mailbox.not_ready_reason",
        help_text="What it lacks (e.g. a sender address), when not ready.",
    )


class CampaignStatusTotalsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    sent = serializers.IntegerField()
    opened = serializers.IntegerField()
    replied = serializers.IntegerField()
    bounced = serializers.IntegerField()


class CampaignRatesSerializer(serializers.Serializer):
    bounce_rate = serializers.FloatField(help_text="Bounces over messages sent, %.")
    open_rate = serializers.FloatField(help_text="Enrollments opened over enrollments sent to, %.")
    reply_rate = serializers.FloatField(help_text="Enrollments replied over enrollments sent to, %.")


class CampaignBatchStatsSerializer(serializers.Serializer):
    batch_number = serializers.IntegerField()
    totals = CampaignStatusTotalsSerializer()


class CampaignRecentBounceSerializer(serializers.Serializer):
    contact_id = serializers.UUIDField()
    email = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    bounced_at = serializers.DateTimeField()


class CampaignCredentialStatsSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    mailbox_id = serializers.UUIDField()
    label = serializers.CharField()
    from_email = serializers.CharField()
    daily_limit = serializers.IntegerField(help_text="The mailbox's, shared by every campaign using it.")
    campaign_daily_limit = serializers.IntegerField(allow_null=True, help_text="This campaign's own cap, if any.")
    sent_today = serializers.IntegerField(
        help_text="First messages this campaign sent through it since midnight, account time zone."
    )
    mailbox_sent_today = serializers.IntegerField(
        help_text="First messages every campaign using the mailbox sent since midnight."
    )
    bounce_rate = serializers.FloatField(help_text="This campaign's bounces over its messages through the mailbox, %.")
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = serializers.CharField(allow_blank=True)
    imap_configured = serializers.BooleanField()
    ready = serializers.BooleanField(help_text="False: dispatch and test sends refuse the campaign.")
    not_ready_reason = serializers.CharField(allow_null=True, help_text="What it lacks, when not ready.")
    imap_status = serializers.ChoiceField(
        choices=["not_configured", "never_polled", "ok", "failing"],
        help_text="Reply detection's health: `failing` when the last IMAP attempt failed (login, TLS, network).",
    )
    imap_last_polled_at = serializers.DateTimeField(allow_null=True)
    imap_last_error = serializers.CharField(allow_null=True, help_text="Why the last attempt failed, when failing.")
    imap_next_attempt_at = serializers.DateTimeField(
        allow_null=True, help_text="When a failing mailbox is tried again (exponential backoff)."
    )


class CampaignSkippedSerializer(serializers.Serializer):
    mx_invalid = serializers.IntegerField()
    cross_campaign_duplicate = serializers.IntegerField()
    already_enrolled = serializers.IntegerField()


class CampaignDetailSerializer(serializers.Serializer):
    """The campaign's fields, steps and credentials; the show endpoint adds the stats keys."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Campaign.Status.choices)
    outreach_id = serializers.UUIDField(allow_null=True)
    min_wait_seconds = serializers.IntegerField()
    max_wait_seconds = serializers.IntegerField()
    verify_email_mx = serializers.BooleanField()
    bounce_rate_threshold = serializers.FloatField()
    track_clicks = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    sequence_steps = SequenceStepSerializer(many=True, source="sequence_steps.all")
    smtp_credentials = SmtpCredentialSerializer(many=True, source="smtp_credentials.all")


class CampaignStatsSerializer(serializers.Serializer):
    """The stats keys of the show endpoint (`enrollments.selectors.campaign_stats`)."""

    totals = CampaignStatusTotalsSerializer()
    rates = CampaignRatesSerializer()
    per_batch = CampaignBatchStatsSerializer(many=True)
    recent_bounces = CampaignRecentBounceSerializer(many=True)
    credentials = CampaignCredentialStatsSerializer(many=True)
    skipped = CampaignSkippedSerializer()


_TIMESTAMP = serializers.DateTimeField()


def stats_representation(
    stats: dict[str, Any], *, per_credential: dict[Any, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """`campaign_stats` output as JSON-ready data, shaped as `CampaignStatsSerializer` documents.

    `per_credential` adds keys to each credential's stats, by credential id
    (readiness, reply detection's state: the show view reads them).

    The stats are plain numbers already; only ids and timestamps need
    rendering. Doing that by hand keeps a 200-batch `per_batch` from going
    through DRF's per-field machinery (most of the endpoint's time otherwise).
    """

    def ts(value):
        return None if value is None else _TIMESTAMP.to_representation(value)

    return {
        **stats,
        "recent_bounces": [
            {**b, "contact_id": str(b["contact_id"]), "bounced_at": ts(b["bounced_at"])}
            for b in stats["recent_bounces"]
        ],
        "credentials": [
            {
                **c,
                "id": str(c["id"]),
                "disabled_at": ts(c["disabled_at"]),
                **{
                    key: ts(value) if key.endswith("_at") else value
                    for key, value in (per_credential or {}).get(c["id"], {}).items()
                },
            }
            for c in stats["credentials"]
        ],
    }


class CampaignShowSerializer(CampaignDetailSerializer):
    """For the schema: the campaign and, at the top level, its stats."""

    totals = CampaignStatusTotalsSerializer()
    rates = CampaignRatesSerializer()
    per_batch = CampaignBatchStatsSerializer(many=True)
    recent_bounces = CampaignRecentBounceSerializer(many=True)
    credentials = CampaignCredentialStatsSerializer(many=True)
    skipped = CampaignSkippedSerializer()


class RenderedStepSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    delay_minutes = serializers.IntegerField()
    subject = serializers.CharField()
    body_html = serializers.CharField()
    body_text = serializers.CharField()


class CampaignPreviewSerializer(serializers.Serializer):
    contact_id = serializers.UUIDField()
    steps = RenderedStepSerializer(many=True)


class OutreachSerializer(serializers.ModelSerializer):
    class Meta:
        model = Outreach
        fields = ["id", "name", "unique_contacts", "created_at", "updated_at"]
        read_only_fields = fields


class OutreachCreateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=255)
    unique_contacts = serializers.BooleanField(required=False, default=False)


class OutreachUpdateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(required=False, max_length=255)
    unique_contacts = serializers.BooleanField(required=False)
