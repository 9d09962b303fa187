from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses keys it does not know (422 naming them).

    A typo in a field name should be an error the integrator sees, not a
    value silently ignored.
    """

    unknown_field_message = "Unknown field."

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [self.unknown_field_message] for name in unknown})
        return super().to_internal_value(data)

    @classmethod
    def validate_input(cls, data, **context) -> dict:
        """Validated data, or the 422 `validation_failed` error with per-field details."""
        serializer = cls(data=data, context=context)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    """The error envelope, for the OpenAPI schema."""

    error = ErrorDetailSerializer()
