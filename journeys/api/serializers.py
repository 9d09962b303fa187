"""Input and output shapes of /api/journeys and of the compat /api/v1/journeys/:id/enroll.

Native input serializers check types and presence only; value rules (ranges,
merge tags, positions) are the campaign services', which a journey goes
through. Validation details are paths into the body (`steps[1].delay_minutes`,
`smtp_credentials[0].smtp_port`), as the services report them.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from campaigns.api.serializers import (
    FlatErrorsInputSerializer,
    SendingOptionsMixin,
    SequenceStepInputSerializer,
    SequenceStepSerializer,
    SmtpCredentialInputSerializer,
    SmtpCredentialSerializer,
)
from journeys.models import Journey, JourneyEnrollment
from journeys.services import MAX_CONTACT_ADDRESSES, MAX_LIST_ADDRESSES

# --- native ------------------------------------------------------------------------------------------------


class JourneyCreateInputSerializer(SendingOptionsMixin, FlatErrorsInputSerializer):
    name = serializers.CharField(max_length=255)
    steps = SequenceStepInputSerializer(many=True, allow_empty=False)
    smtp_credentials = SmtpCredentialInputSerializer(many=True, allow_empty=False)


class JourneyStepUpdateInputSerializer(FlatErrorsInputSerializer):
    """A step of the new list: with the `id` of a stored step it changes that step (what it leaves out is
    kept), without one it is a new step."""

    id = serializers.UUIDField(required=False, allow_null=True)
    position = serializers.IntegerField(required=False)
    subject = serializers.CharField(required=False, max_length=998, trim_whitespace=False)
    body_html = serializers.CharField(required=False, trim_whitespace=False)
    body_text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    delay_minutes = serializers.IntegerField(required=False)


class JourneySmtpCredentialUpdateInputSerializer(SmtpCredentialInputSerializer):
    """A credential of the new list: with the `id` of a stored one it changes it (its passwords only when
    given), without one it is a new credential and needs every field a create needs."""

    id = serializers.UUIDField(required=False, allow_null=True)


class JourneyUpdateInputSerializer(SendingOptionsMixin, FlatErrorsInputSerializer):
    name = serializers.CharField(required=False, max_length=255)
    steps = JourneyStepUpdateInputSerializer(
        many=True, required=False, help_text="The whole new list; a stored step left out is deleted."
    )
    smtp_credentials = JourneySmtpCredentialUpdateInputSerializer(
        many=True, required=False, help_text="The whole new list; a stored credential left out is deleted."
    )


class JourneyEnrollmentCountsSerializer(serializers.Serializer):
    active = serializers.IntegerField()
    completed = serializers.IntegerField()
    exited = serializers.IntegerField()


class JourneyListSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=Journey.State.choices)
    min_wait_seconds = serializers.IntegerField()
    max_wait_seconds = serializers.IntegerField()
    verify_email_mx = serializers.BooleanField()
    bounce_rate_threshold = serializers.FloatField()
    track_clicks = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class JourneySerializer(JourneyListSerializer):
    """The journey with its steps, its credentials (never a secret) and its enrollments counted by status."""

    steps = SequenceStepSerializer(many=True, source="sequence_steps.all")
    smtp_credentials = SmtpCredentialSerializer(many=True, source="smtp_credentials.all")
    enrollments = JourneyEnrollmentCountsSerializer(source="enrollment_counts")


class JourneyEnrollmentSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid")
    journey_id = serializers.UUIDField()
    contact_id = serializers.UUIDField()
    contact_email = serializers.CharField(source="contact.email")
    status = serializers.ChoiceField(choices=JourneyEnrollment.JourneyStatus.choices, source="journey_status")
    enrolled_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    exited_at = serializers.DateTimeField(allow_null=True)
    exit_reason = serializers.ChoiceField(choices=["bounced", "replied", "unsubscribed"], allow_null=True)
    round = serializers.IntegerField(help_text="1 for a contact's first time in the journey, 2 the next…")


# --- compat: POST /api/v1/journeys/:id/enroll --------------------------------------------------------------

NOT_A_LIST_OF_STRINGS = "must be an array of strings"


def compat_address_list(data: Any, name: str) -> tuple[list[str] | None, list[str] | None]:
    """The parameter `name` of the body as a list of strings (None when absent or null), or its errors.

    Form bodies (`name[]=a&name[]=b` or `name=a`) are read too, as the vendor's
    Rails API reads them.
    """
    form = hasattr(data, "getlist")  # a QueryDict: form-encoded or multipart
    value = (data.getlist(f"{name}[]") or data.getlist(name) or None) if form else data.get(name)
    if value is None:
        return None, None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None, [NOT_A_LIST_OF_STRINGS]
    if any("\x00" in item for item in value):  # form bodies skip the JSON parser's refusal; PostgreSQL refuses NUL
        return None, ["must not contain NUL characters"]
    return value, None


class CompatEnrollInputSerializer(serializers.Serializer):
    """For the schema only: the body is read by `compat_address_list`, as the seed's API reads it."""

    contact_email_addresses = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        max_length=MAX_CONTACT_ADDRESSES,
        help_text=f"Contact email addresses to enroll (max {MAX_CONTACT_ADDRESSES}); trimmed and lowercased.",
    )
    list_email_addresses = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        max_length=MAX_LIST_ADDRESSES,
        help_text=f"Email addresses of lists whose members to enroll (max {MAX_LIST_ADDRESSES}).",
    )


class CompatNotEnrolledSerializer(serializers.Serializer):
    not_found = serializers.ListField(
        child=serializers.CharField(), help_text="Entries of contact_email_addresses that match no active contact."
    )
    already_enrolled = serializers.ListField(child=serializers.CharField())
    recently_completed = serializers.ListField(
        child=serializers.CharField(), help_text="Completed the journey within the last 12 hours."
    )


class CompatEnrollResultSerializer(serializers.Serializer):
    enrolled_count = serializers.IntegerField()
    not_enrolled = CompatNotEnrolledSerializer()


def compat_enroll_result(result) -> dict[str, Any]:
    """A `JourneyEnrollResult` in the seed's shape."""
    return {
        "enrolled_count": result.enrolled_count,
        "not_enrolled": {
            "not_found": result.not_found,
            "already_enrolled": result.already_enrolled,
            "recently_completed": result.recently_completed,
        },
    }


class CompatErrorSerializer(serializers.Serializer):
    """For the schema: `error` is a message string, or (invalid parameters) an object of messages per
    parameter, e.g. `{"base": [...]}`."""

    error = serializers.JSONField()
