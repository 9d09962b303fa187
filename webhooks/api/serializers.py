from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import StrictInputSerializer
from webhooks.events import SUBSCRIBABLE_EVENT_TYPES
from webhooks.models import URL_MAX_LENGTH, WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from webhooks.selectors import RECENT_ATTEMPTS_SHOWN

from .event_schema import WebhookEventPayload

EVENTS_HELP = "Event types to receive; empty or omitted: every type. Known types: " + ", ".join(
    SUBSCRIBABLE_EVENT_TYPES
)


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """An endpoint as the API shows it: never its secret."""

    events = serializers.ListField(child=serializers.CharField(), help_text=EVENTS_HELP)
    secret_rotating_until = serializers.DateTimeField(
        source="previous_secret_expires_at",
        allow_null=True,
        help_text="Until then every delivery also carries a signature made with the previous secret.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "secret_rotating_until",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """Answered by create and rotate_secret only: the one time the secret is shown."""

    secret = serializers.CharField(
        help_text="`whsec_` + base64 of 32 random bytes. Shown once: store it now; it cannot be read again."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointCreateInputSerializer(StrictInputSerializer):
    url = serializers.CharField(
        max_length=URL_MAX_LENGTH, help_text="https URL on a public host (no literal private IPs, no localhost)."
    )
    description = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    events = serializers.ListField(child=serializers.CharField(), required=False, default=list, help_text=EVENTS_HELP)


class WebhookEndpointUpdateInputSerializer(StrictInputSerializer):
    url = serializers.CharField(required=False, max_length=URL_MAX_LENGTH)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    events = serializers.ListField(child=serializers.CharField(), required=False, help_text=EVENTS_HELP)
    enabled = serializers.BooleanField(
        required=False, help_text="false disables (pending deliveries are cancelled); true re-enables."
    )


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDeliveryAttempt
        fields = ["attempted_at", "status_code", "duration_ms", "error", "succeeded"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.id")
    event_type = serializers.CharField(source="event.type")
    endpoint_id = serializers.UUIDField()
    recent_attempts = serializers.SerializerMethodField(
        help_text=f"The latest {RECENT_ATTEMPTS_SHOWN} attempts, newest first."
    )
    payload = serializers.SerializerMethodField(help_text="The event as it is posted (the body of every attempt).")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "endpoint_id",
            "status",
            "attempts",
            "last_attempt_at",
            "last_status_code",
            "last_duration_ms",
            "last_error",
            "next_attempt_at",
            "succeeded_at",
            "created_at",
            "recent_attempts",
            "payload",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "next_attempt_at": {"help_text": "When the next attempt is due (null once succeeded or given up)."},
            "attempts": {"help_text": "Attempts so far (since the last redeliver)."},
        }

    @extend_schema_field(WebhookEventPayload)
    def get_payload(self, obj) -> dict:
        event = obj.event
        return {"id": str(event.id), "type": event.type, "created_at": event.created_at, "data": event.data}

    @extend_schema_field(WebhookAttemptSerializer(many=True))
    def get_recent_attempts(self, obj) -> list[dict]:
        attempts = list(obj.attempt_log.all())[:RECENT_ATTEMPTS_SHOWN]
        return WebhookAttemptSerializer(attempts, many=True).data


class WebhookEventTypeSerializer(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()
    subscribable = serializers.BooleanField(help_text="false for webhook.test, which only the test action sends.")
    payload_schema = serializers.CharField(help_text="The OpenAPI component documenting this event's payload.")
