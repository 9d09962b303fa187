"""The base of every native resource viewset: account scoping and the 404 code."""

from django.db.models import QuerySet
from rest_framework import viewsets

from .errors import ValidationFailed
from .lookups import get_or_not_found


class AccountScopedViewSet(viewsets.GenericViewSet):
    """Subclasses implement `get_queryset` from a selector over `self.request.user`
    (the caller's account) and name their `not_found_code`."""

    not_found_code = "not_found"
    not_found_message = "Not found."
    lookup_value_regex = "[^/]+"

    def get_object(self):
        obj = get_or_not_found(
            self.get_queryset(),
            self.kwargs[self.lookup_url_kwarg or self.lookup_field],
            code=self.not_found_code,
            message=self.not_found_message,
        )
        self.check_object_permissions(self.request, obj)
        return obj

    def filtered(self, filterset) -> QuerySet:
        """The filterset's queryset; invalid filter values are a 422 naming the parameter."""
        if not filterset.is_valid():
            raise ValidationFailed(
                "Invalid filter: " + ", ".join(sorted(filterset.errors)),
                details={name: list(messages) for name, messages in filterset.errors.items()},
            )
        return filterset.qs

    def paginated(self, queryset: QuerySet, serializer_class):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)
