from django.core.validators import MaxValueValidator, MinValueValidator
from rest_framework import serializers
from rest_framework.utils.formatting import lazy_format

# PostgreSQL's `integer`, the column of every IntegerField/PositiveIntegerField here: a value past it
# would reach the database and fail there (a 500), so every integer that enters is held to it first.
INTEGER_MIN = -2_147_483_648
INTEGER_MAX = 2_147_483_647


def _bound(field: serializers.IntegerField) -> None:
    """Give an IntegerField the column's range where it sets no bound of its own (as its __init__ would)."""
    for attr, limit, validator in (
        ("max_value", INTEGER_MAX, MaxValueValidator),
        ("min_value", INTEGER_MIN, MinValueValidator),
    ):
        if getattr(field, attr) is None:
            setattr(field, attr, limit)
            message = lazy_format(field.error_messages[attr], **{attr: limit})
            field.validators.append(validator(limit, message=message))


def bound_integers(fields) -> None:
    """Bound every integer among `fields` (a serializer's field mapping), nested lists and dicts included.

    Applied to every `StrictInputSerializer`; an input serializer on another
    base calls it from its `get_fields`. `tests/core/test_integer_ranges.py`
    walks the OpenAPI schema to prove no integer enters unbounded.
    """
    for field in fields.values():
        while isinstance(field, serializers.ListField | serializers.DictField | serializers.ListSerializer):
            field = field.child
        if isinstance(field, serializers.IntegerField):
            _bound(field)
        elif isinstance(field, serializers.Serializer) and not isinstance(field, StrictInputSerializer):
            bound_integers(field.fields)


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses keys it does not know (422 naming them).

    A typo in a field name should be an error the integrator sees, not a
    value silently ignored. Its integers are held to the database column's
    range unless they set a narrower one (`bound_integers`).
    """

    unknown_field_message = "Unknown field."

    def get_fields(self):
        fields = super().get_fields()
        bound_integers(fields)
        return fields

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
