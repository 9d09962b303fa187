from rest_framework import serializers

from core.serializers import StrictInputSerializer
from mailing.models import ScheduledSend


class DispatchInputSerializer(StrictInputSerializer):
    batch_number = serializers.IntegerField(
        min_value=0, required=False, allow_null=True, help_text="Omitted: the lowest batch with pending enrollments."
    )


class DayCountSerializer(serializers.Serializer):
    date = serializers.DateField()
    count = serializers.IntegerField(help_text="First messages (step 1) scheduled that day.")


class DispatchResultSerializer(serializers.Serializer):
    batch_number = serializers.IntegerField()
    scheduled = serializers.IntegerField(help_text="Enrollments scheduled.")
    sends = serializers.IntegerField(help_text="Sends written, all steps.")
    first_send_at = serializers.DateTimeField(allow_null=True)
    last_send_at = serializers.DateTimeField(allow_null=True)
    by_day = DayCountSerializer(many=True)


class ForecastInputSerializer(StrictInputSerializer):
    days = serializers.IntegerField(
        min_value=1, max_value=90, default=7, required=False, help_text="Daily buckets from today; 1..90."
    )


class ForecastBucketSerializer(serializers.Serializer):
    date = serializers.DateField()
    total = serializers.IntegerField()
    by_step = serializers.DictField(child=serializers.IntegerField(), help_text="Step position → sends.")
    by_credential = serializers.DictField(child=serializers.IntegerField(), help_text="Credential id → sends.")


class CampaignStatusSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()


class TestSendInputSerializer(StrictInputSerializer):
    emails = serializers.ListField(child=serializers.EmailField(), min_length=1, max_length=10)


class TestSendMessageSerializer(serializers.Serializer):
    email = serializers.CharField()
    step = serializers.IntegerField()
    subject = serializers.CharField()
    message_id = serializers.CharField()
    accepted = serializers.BooleanField()
    error = serializers.CharField(help_text="The server's reply when it refused the message; empty otherwise.")


class TestSendResultSerializer(serializers.Serializer):
    smtp_credential_id = serializers.UUIDField()
    messages = TestSendMessageSerializer(many=True)


class UnknownSendSerializer(serializers.ModelSerializer):
    enrollment_id = serializers.UUIDField(source="enrollment.uuid")
    contact_email = serializers.CharField(source="enrollment.contact.email")
    step = serializers.IntegerField(source="step.position")
    smtp_credential_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = ScheduledSend
        fields = [
            "id",
            "enrollment_id",
            "contact_email",
            "step",
            "smtp_credential_id",
            "status",
            "send_at",
            "attempts",
            "message_id",
            "last_error",
            "claimed_by",
            "updated_at",
        ]


class ReleaseInputSerializer(StrictInputSerializer):
    send_ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, allow_null=True, help_text="Omitted: every unknown send."
    )


class ReleaseResultSerializer(serializers.Serializer):
    released = serializers.IntegerField()
