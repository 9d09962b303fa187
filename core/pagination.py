"""Keyset pagination for native lists: a bare JSON array and a `Link` header.

A page is `WHERE (k1, k2) > (last k1, last k2) ORDER BY k1, k2 LIMIT n`, so a
page at any depth costs one index range scan, like the first. Views name the
keys with `keyset_fields` (default `("created_at", "id")`, all ascending or all
descending); the last key must be unique.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import uuid
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from .errors import ValidationFailed

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def parse_limit(request: Request, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """The `limit` query parameter, 1..maximum; anything else is a 422."""
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise ValidationFailed(
            f"limit must be a whole number from 1 to {maximum}.",
            details={"limit": [f"Must be a whole number from 1 to {maximum}."]},
        )
    return value


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, queryset: QuerySet, fields: list[str]) -> list[Any]:
    invalid = ValidationFailed("The cursor is not valid.", details={"cursor": ["Invalid cursor."]})
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(values, list) or len(values) != len(fields):
        raise invalid
    opts = queryset.model._meta
    decoded = []
    for name, value in zip(fields, values, strict=True):
        field = opts.get_field(name.lstrip("-"))
        try:
            decoded.append(field.to_python(value))
        except (DjangoValidationError, TypeError, ValueError, AttributeError):  # e.g. a number for a datetime
            raise invalid from None
        if decoded[-1] is None and value is not None:
            raise invalid
    return decoded


def keyset_filter(fields: list[str], values: list[Any]) -> Q:
    """Rows strictly after `values` in the order of `fields`: a row-value comparison.

    `(k1, k2) > (v1, v2)` is an index condition on a (…, k1, k2) index, so the
    scan starts at the cursor even when many rows share k1 (a bulk import
    gives 100,000 contacts one created_at). Django 5.2's tuple lookups (made
    for composite primary keys) write it.
    """
    descending = fields[0].startswith("-")
    lookup = TupleLessThan if descending else TupleGreaterThan
    columns = Tuple(*(F(name.lstrip("-")) for name in fields))
    return Q(lookup(columns, list(values)))


class KeysetPagination(BasePagination):
    """`?limit=` (default 100, max 1000) and an opaque `?cursor=`."""

    next_url: str | None = None

    def paginate_queryset(self, queryset: QuerySet, request: Request, view=None) -> list:
        fields = list(getattr(view, "keyset_fields", ("created_at", "id")))
        limit = parse_limit(request)
        queryset = queryset.order_by(*fields)
        cursor = request.query_params.get("cursor")
        if cursor:
            queryset = queryset.filter(keyset_filter(fields, decode_cursor(cursor, queryset, fields)))
        rows = list(queryset[: limit + 1])
        self.next_url = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            values = [getattr(last, f.lstrip("-")) for f in fields]
            url = request.build_absolute_uri()
            self.next_url = replace_query_param(url, "cursor", encode_cursor(values))
            self.next_url = replace_query_param(self.next_url, "limit", limit)
        return rows

    def get_paginated_response(self, data) -> Response:
        headers = {"Link": f'<{self.next_url}>; rel="next"'} if self.next_url else {}
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return schema

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": 'Opaque cursor; follow the `Link: <…>; rel="next"` header instead of building it.',
                "schema": {"type": "string"},
            },
        ]
