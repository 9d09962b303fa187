"""GET /api/sequences/v1/enrollments: the sequences vendor's enrollment list over our campaigns.

Query parameters are validated as the vendor's API does (every invalid one
reported at once, a 422 in its shape, `sequences_schema`); the reads are in
`sequences_read`; the page is keyset-paginated on the enrollment's integer
key with `core.pagination`'s opaque cursor, so a page at any depth is one
index range scan.
"""

from __future__ import annotations

import datetime
import re
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ValidationFailed
from core.pagination import decode_cursor, encode_cursor
from enrollments.models import Enrollment

from . import sequences_read as read
from .sequences_schema import DEFAULT_LIMIT, MAX_LIMIT, SEQUENCES_LIST_SCHEMA

KEYSET = ["id"]
BIGINT_MAX = 2**63 - 1
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
STATUS_CHOICES_MESSAGE = "Input should be 'DRAFT', 'IN_PROGRESS' or 'FINISHED'"


class QueryInvalid(Exception):
    """Invalid query parameters: the pydantic-style items of the vendor's 422."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__("invalid query parameters")
        self.items = items


def _item(kind: str, loc: list[Any], msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": ["query", *loc], "msg": msg, "input": value}


def sequences_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Errors in the vendor's FastAPI shape (`sequences_schema`); None (a 500) only for a real bug."""
    if isinstance(exc, QueryInvalid):
        return Response({"detail": exc.items}, status=422)
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        message = "Not authenticated" if isinstance(exc, drf_exceptions.NotAuthenticated) else "Invalid API key"
        return Response({"detail": message}, status=401, headers={"WWW-Authenticate": "APIKey"})
    if isinstance(exc, Http404 | drf_exceptions.NotFound):
        return Response({"detail": "Not Found"}, status=404)
    if isinstance(exc, PermissionDenied | drf_exceptions.PermissionDenied):
        return Response({"detail": "Forbidden"}, status=403)
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return Response({"detail": "Method Not Allowed"}, status=405, headers={"Allow": "GET"})
    if isinstance(exc, drf_exceptions.APIException):  # 406, 429…
        return Response({"detail": str(exc.detail)}, status=exc.status_code)
    return None


def _timestamp(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uuid(params, name: str, errors: list) -> uuid.UUID | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        errors.append(_item("uuid_parsing", [name], "Input should be a valid UUID", raw))
        return None


def _datetime(params, name: str, errors: list) -> datetime.datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    if RFC3339.match(raw.strip()):
        try:
            return datetime.datetime.fromisoformat(raw.strip().upper().replace(" ", "T"))
        except ValueError:
            pass
    errors.append(_item("datetime_parsing", [name], "Input should be a valid RFC 3339 datetime", raw))
    return None


def _limit(params, errors: list) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw.strip())
    except ValueError:
        errors.append(
            _item(
                "int_parsing", ["limit"], "Input should be a valid integer, unable to parse string as an integer", raw
            )
        )
        return DEFAULT_LIMIT
    if value < 1:
        errors.append(_item("greater_than_equal", ["limit"], "Input should be greater than or equal to 1", raw))
    elif value > MAX_LIMIT:
        errors.append(_item("less_than_equal", ["limit"], f"Input should be less than or equal to {MAX_LIMIT}", raw))
    return value


def _statuses(params, errors: list) -> list[str]:
    values = params.getlist("status")
    for index, value in enumerate(values):
        if value not in read.STATUSES:
            errors.append(_item("enum", ["status", index], STATUS_CHOICES_MESSAGE, value))
    return values


def _cursor(params, errors: list) -> int | None:
    raw = params.get("cursor")
    if not raw:
        return None
    try:
        (position,) = decode_cursor(raw, Enrollment.objects.all(), KEYSET)
    except ValidationFailed:
        position = None
    if not isinstance(position, int) or not 0 <= position <= BIGINT_MAX:
        errors.append(_item("value_error", ["cursor"], "Invalid cursor", raw))
        return None
    return position


def _render(enrollment, replies: dict, unauthorized: set) -> dict[str, Any]:
    campaign, contact, credential = enrollment.campaign, enrollment.contact, enrollment.smtp_credential
    mailbox = credential.mailbox if credential is not None else None
    reply = replies.get(enrollment.pk)
    paused = campaign.status == campaign.Status.PAUSED
    blocked = mailbox is not None and mailbox.disabled_at is not None
    return {
        "id": str(enrollment.uuid),
        "created_at": _timestamp(enrollment.created_at),
        "updated_at": _timestamp(enrollment.updated_at),
        "sequence": {"id": str(campaign.pk), "name": campaign.name, "is_paused": paused},
        "person": {
            "id": str(contact.pk),
            "email": contact.email,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "linkedin_url": contact.linkedin_url,
        },
        "mailbox": None
        if mailbox is None
        else {
            "id": str(mailbox.pk),
            "email": mailbox.email,
            "display_name": mailbox.display_name,
            "is_paused": blocked,
            "is_unauthorized": mailbox.oauth_revoked_at is not None or mailbox.pk in unauthorized,
        },
        "reply_email_message": None
        if reply is None
        else {
            "id": str(reply.id),
            "subject": reply.subject,
            "classifications": [],
            "received_at": _timestamp(reply.received_at),
        },
        "is_blocked": blocked,
        "is_bounced": enrollment.bounced_at is not None,
        "is_canceled": read.sequence_enrollment_is_canceled(enrollment),
        "is_excluded": enrollment.excluded,
        "is_opted_out": enrollment.unsubscribed_at is not None,
        "is_paused": paused,
        "is_replied": enrollment.replied_at is not None,
        "started_at": _timestamp(enrollment.sent_at),
        "ended_at": _timestamp(read.sequence_enrollment_ended_at(enrollment)),
    }


class SequenceEnrollmentListView(APIView):
    """GET /api/sequences/v1/enrollments in the vendor's shapes, errors included."""

    http_method_names = ["get", "options"]

    def get_exception_handler(self):
        return sequences_exception_handler

    @extend_schema(**SEQUENCES_LIST_SCHEMA)
    def get(self, request):
        params, errors = request.query_params, []
        filters = {
            "sequence_id": _uuid(params, "sequence_id", errors),
            "person_id": _uuid(params, "person_id", errors),
            "mailbox_id": _uuid(params, "mailbox_id", errors),
            "statuses": _statuses(params, errors),
            "updated_after": _datetime(params, "updated_after", errors),
            "updated_before": _datetime(params, "updated_before", errors),
        }
        limit = _limit(params, errors)
        position = _cursor(params, errors)
        if errors:
            raise QueryInvalid(errors)
        rows = read.sequence_enrollment_page(account=request.user, after=position, limit=limit + 1, **filters)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor([rows[-1].pk])
        replies = read.sequence_enrollment_replies(enrollment_ids=[row.pk for row in rows])
        unauthorized = read.mailboxes_unauthorized(
            mailbox_ids={row.smtp_credential.mailbox_id for row in rows if row.smtp_credential_id}
        )
        return Response(
            {"enrollments": [_render(row, replies, unauthorized) for row in rows], "next_cursor": next_cursor}
        )
