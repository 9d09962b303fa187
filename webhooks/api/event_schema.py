"""The payload of every event type, as OpenAPI components (documentation only).

Each event is `{"id", "type", "created_at", "data"}`; `data` per type is below.
The producers (enrollments, campaigns, mailing, journeys) build `data` with
these fields; `GET /api/webhook_event_types` shows these shapes in /api/docs/.
"""

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from webhooks import events as E


class EnrollmentData(serializers.Serializer):
    id = serializers.UUIDField(help_text="The enrollment.")
    campaign_id = serializers.UUIDField()
    contact_id = serializers.UUIDField()
    contact_email = serializers.EmailField()
    smtp_credential_id = serializers.UUIDField(allow_null=True, help_text="The credential step 1 went through.")
    step = serializers.IntegerField(allow_null=True, help_text="The sequence step concerned (1-based), if any.")
    status = serializers.ChoiceField(choices=["pending", "sent", "opened", "replied", "bounced"])
    batch_number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    opened_at = serializers.DateTimeField(allow_null=True)
    replied_at = serializers.DateTimeField(allow_null=True)
    bounced_at = serializers.DateTimeField(allow_null=True)
    bounce_reason = serializers.CharField(allow_null=True)
    unsubscribed_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class CampaignCompletedData(serializers.Serializer):
    id = serializers.UUIDField(help_text="The campaign.")
    name = serializers.CharField()
    outreach_id = serializers.UUIDField(allow_null=True)
    completed_at = serializers.DateTimeField()
    stats = serializers.DictField(
        child=serializers.IntegerField(), help_text="Counts: enrolled, sent, opened, replied, bounced, unsubscribed."
    )


class SmtpCredentialDisabledData(serializers.Serializer):
    id = serializers.UUIDField(help_text="The SMTP credential (a campaign's use of the mailbox).")
    campaign_id = serializers.UUIDField()
    mailbox_id = serializers.UUIDField(help_text="The mailbox disabled: every campaign using it gets this event.")
    name = serializers.CharField()
    from_email = serializers.CharField(help_text="The sending address (empty when the mailbox has none yet).")
    reason = serializers.CharField(help_text="Why it was disabled (bounce rate, authentication failures, operator).")
    disabled_at = serializers.DateTimeField()


class MailboxDisabledData(serializers.Serializer):
    id = serializers.UUIDField(help_text="The mailbox.")
    email = serializers.CharField(help_text="The sending address (empty when it has none yet).")
    reason = serializers.CharField(
        help_text="Why: which campaign's bounce-rate threshold was crossed, a revoked OAuth2 grant, or an operator."
    )
    disabled_at = serializers.DateTimeField()
    campaign_ids = serializers.ListField(
        child=serializers.UUIDField(), help_text="The campaigns and journeys using it, all stopped."
    )


class JourneyEnrollmentData(serializers.Serializer):
    id = serializers.UUIDField(help_text="The journey enrollment (the same id as its enrollment).")
    journey_id = serializers.UUIDField()
    contact_id = serializers.UUIDField()
    contact_email = serializers.EmailField()
    status = serializers.ChoiceField(choices=["completed", "exited"])
    enrolled_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True, help_text="When its last step was sent (completed).")
    exited_at = serializers.DateTimeField(allow_null=True, help_text="When it stopped (exited).")
    exit_reason = serializers.ChoiceField(choices=["bounced", "replied", "unsubscribed"], allow_null=True)


class WebhookTestData(serializers.Serializer):
    endpoint_id = serializers.UUIDField()
    message = serializers.CharField()


class WebhookEndpointDisabledData(serializers.Serializer):
    id = serializers.UUIDField(help_text="The endpoint that was disabled.")
    url = serializers.CharField()
    description = serializers.CharField()
    disabled_reason = serializers.CharField(
        help_text="410 Gone, or every delivery failing for 5 days, with the last error."
    )
    disabled_at = serializers.DateTimeField()


DATA_SERIALIZERS = {
    E.ENROLLMENT_SENT: EnrollmentData,
    E.ENROLLMENT_OPENED: EnrollmentData,
    E.ENROLLMENT_REPLIED: EnrollmentData,
    E.ENROLLMENT_BOUNCED: EnrollmentData,
    E.ENROLLMENT_UNSUBSCRIBED: EnrollmentData,
    E.ENROLLMENT_COMPLETED: EnrollmentData,
    E.CAMPAIGN_COMPLETED: CampaignCompletedData,
    E.SMTP_CREDENTIAL_DISABLED: SmtpCredentialDisabledData,
    E.MAILBOX_DISABLED: MailboxDisabledData,
    E.JOURNEY_ENROLLMENT_COMPLETED: JourneyEnrollmentData,
    E.JOURNEY_ENROLLMENT_EXITED: JourneyEnrollmentData,
    E.WEBHOOK_TEST: WebhookTestData,
    E.WEBHOOK_ENDPOINT_DISABLED: WebhookEndpointDisabledData,
}
assert set(DATA_SERIALIZERS) == set(E.EVENT_TYPES), "document the payload of every event type"


def component_name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace(".", "_").split("_")) + "Event"


def _event_serializer(event_type: str, data_class: type[serializers.Serializer]) -> serializers.Serializer:
    name = component_name(event_type)
    attrs = {
        "id": serializers.UUIDField(help_text="The event id; also the `webhook-id` header, the same on every retry."),
        "type": serializers.ChoiceField(choices=[event_type]),
        "created_at": serializers.DateTimeField(),
        "data": data_class(),
        "Meta": type("Meta", (), {"ref_name": name}),
        "__doc__": E.EVENT_TYPES[event_type],
    }
    return type(name, (serializers.Serializer,), attrs)()


WebhookEventPayload = PolymorphicProxySerializer(
    component_name="WebhookEventPayload",
    serializers={event_type: _event_serializer(event_type, cls) for event_type, cls in DATA_SERIALIZERS.items()},
    resource_type_field_name="type",
)
