from rest_framework import serializers

from core.serializers import StrictInputSerializer
from enrollments.models import Enrollment, EnrollmentSkip


class EnrollInputSerializer(StrictInputSerializer):
    contact_import_id = serializers.CharField(help_text="The id of one of the account's contact imports.")
    batch_size = serializers.IntegerField(min_value=1, max_value=10_000, default=50, required=False)


class EnrollContactInputSerializer(StrictInputSerializer):
    contact_id = serializers.CharField(help_text="The id of one of the account's contacts.")
    batch_number = serializers.IntegerField(min_value=0, default=0, required=False)
    priority = serializers.BooleanField(
        default=False, required=False, help_text="When true, created_at is 2000-01-01: first in its batch."
    )


class SkippedSerializer(serializers.Serializer):
    contact_id = serializers.CharField()
    email = serializers.CharField()
    reason = serializers.CharField()


class EnrollResultSerializer(serializers.Serializer):
    enrolled = serializers.IntegerField()
    batches = serializers.IntegerField()
    batch_size = serializers.IntegerField()
    skipped = SkippedSerializer(many=True)


class EnrollmentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid")
    campaign_id = serializers.UUIDField()
    contact_id = serializers.UUIDField()
    smtp_credential_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = Enrollment
        fields = [
            "id",
            "campaign_id",
            "contact_id",
            "smtp_credential_id",
            "status",
            "batch_number",
            "created_at",
            "sent_at",
            "opened_at",
            "replied_at",
            "bounced_at",
            "bounce_reason",
            "unsubscribed_at",
            "completed_at",
            "updated_at",
        ]
        read_only_fields = fields


class EnrolledContactSerializer(serializers.ModelSerializer):
    """The seed's enroll_contact answer."""

    id = serializers.UUIDField(source="uuid")
    contact_id = serializers.UUIDField()

    class Meta:
        model = Enrollment
        fields = ["id", "contact_id", "batch_number", "status", "created_at"]
        read_only_fields = fields


class ReplySerializer(EnrollmentSerializer):
    hours_to_reply = serializers.SerializerMethodField()

    class Meta(EnrollmentSerializer.Meta):
        fields = [*EnrollmentSerializer.Meta.fields, "hours_to_reply"]
        read_only_fields = fields

    def get_hours_to_reply(self, enrollment) -> float | None:
        """Hours from the step-1 send to the reply, one decimal."""
        delta = getattr(enrollment, "time_to_reply", None)
        return None if delta is None else round(delta.total_seconds() / 3600, 1)


class SkipSerializer(serializers.ModelSerializer):
    campaign_id = serializers.UUIDField()
    contact_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = EnrollmentSkip
        fields = ["id", "campaign_id", "contact_id", "email", "kind", "reason", "created_at"]
        read_only_fields = fields
