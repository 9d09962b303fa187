"""Fetching one object of the caller's account, or the documented 404."""

from __future__ import annotations

import uuid
from typing import TypeVar

from django.db.models import Model, QuerySet

from .errors import NotFoundError

M = TypeVar("M", bound=Model)


def get_or_not_found(queryset: QuerySet[M], pk: object, *, code: str, message: str) -> M:
    """`queryset.get(pk=pk)`; a malformed id is the same 404 as an unknown one."""
    try:
        if not isinstance(pk, uuid.UUID):
            pk = uuid.UUID(str(pk))
        return queryset.get(pk=pk)
    except (ValueError, TypeError, AttributeError, queryset.model.DoesNotExist):
        raise NotFoundError(message, code=code) from None
