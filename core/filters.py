"""django-filter filters shared by the list endpoints."""

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from .serializers import INTEGER_MAX, INTEGER_MIN


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": INTEGER_MAX})
class ColumnIntegerFilter(django_filters.NumberFilter):
    """A whole number held to an `integer` column's range (default 0..2147483647): past it, a 422 naming it.

    django-filter's NumberFilter takes decimals and no bound, and the
    schema would show neither.
    """

    field_class = forms.IntegerField

    def __init__(self, *args, min_value: int = 0, max_value: int = INTEGER_MAX, **kwargs):
        assert INTEGER_MIN <= min_value <= max_value <= INTEGER_MAX
        super().__init__(*args, min_value=min_value, max_value=max_value, **kwargs)
