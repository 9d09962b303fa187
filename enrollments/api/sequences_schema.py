"""The OpenAPI description of GET /api/sequences/v1/enrollments, and its error shape.

The vendor's API (shared/seeds/compat-sequences-v1-enrollments.md) validates
with 422s, the FastAPI/pydantic convention, so its integrators parse errors as
`{"detail": [{"type", "loc", "msg", "input"}]}` (validation) or
`{"detail": "<message>"}` (anything else). This surface answers in that shape,
never in the native envelope; the serializers here describe it (they are used
for the schema only: the view renders plain dicts).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from .sequences_read import STATUSES

MAX_LIMIT = 100
DEFAULT_LIMIT = 100


class _Sequence(serializers.Serializer):
    id = serializers.UUIDField(help_text="The campaign's id (the `id` of /api/campaigns).")
    name = serializers.CharField()
    is_paused = serializers.BooleanField(help_text="The campaign is paused.")


class _Person(serializers.Serializer):
    id = serializers.UUIDField(help_text="The contact's id (the `id` of /api/contacts).")
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    linkedin_url = serializers.CharField(help_text="Empty when unknown.")


class _Mailbox(serializers.Serializer):
    id = serializers.UUIDField(help_text="The account's mailbox sending to this person (`/api/mailboxes/{id}`).")
    email = serializers.CharField(help_text="The sender address (empty for a mailbox that has none yet).")
    display_name = serializers.CharField(help_text="The sender name (the address when it has none).")
    is_paused = serializers.BooleanField(help_text="The mailbox is disabled (for every campaign using it).")
    is_unauthorized = serializers.BooleanField(
        help_text="Its OAuth2 grant was revoked, or its last send attempt failed SMTP authentication."
    )


class _Classification(serializers.Serializer):
    id = serializers.UUIDField()


class _Reply(serializers.Serializer):
    id = serializers.UUIDField(help_text="The detected reply's id.")
    subject = serializers.CharField()
    classifications = _Classification(many=True, help_text="Always empty: replies are not classified yet.")
    received_at = serializers.DateTimeField()


class SequenceEnrollmentSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The enrollment's id.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(
        help_text="With microseconds: a shown value is an exact inclusive bound for `updated_after`/`updated_before`."
    )
    sequence = _Sequence()
    person = _Person()
    mailbox = _Mailbox(allow_null=True, help_text="Null until dispatch assigns one.")
    reply_email_message = _Reply(allow_null=True, help_text="The detected reply; null if none.")
    is_blocked = serializers.BooleanField(help_text="Its mailbox is disabled.")
    is_bounced = serializers.BooleanField()
    is_canceled = serializers.BooleanField(
        help_text="Its remaining sends were canceled for another reason than a reply, bounce or opt-out "
        "(an operator, a deletion, a send that failed for good)."
    )
    is_excluded = serializers.BooleanField(help_text="The person was skipped at enroll or dispatch (MX, duplicate).")
    is_opted_out = serializers.BooleanField(help_text="The person unsubscribed.")
    is_paused = serializers.BooleanField(help_text="The campaign is paused.")
    is_replied = serializers.BooleanField()
    started_at = serializers.DateTimeField(allow_null=True, help_text="The first send.")
    ended_at = serializers.DateTimeField(allow_null=True, help_text="When it finished or stopped (FINISHED only).")


class SequenceEnrollmentPageSerializer(serializers.Serializer):
    enrollments = SequenceEnrollmentSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Null on the last page.")


class _ValidationItem(serializers.Serializer):
    type = serializers.CharField(help_text="`int_parsing`, `less_than_equal`, `uuid_parsing`, `enum`, …")
    loc = serializers.ListField(child=serializers.JSONField(), help_text='`["query", "<parameter>"(, index)]`')
    msg = serializers.CharField()
    input = serializers.JSONField()


class ValidationErrorSerializer(serializers.Serializer):
    detail = _ValidationItem(many=True)


class DetailErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


STATUS_RULES = (
    "`status`: `DRAFT` (not dispatched yet), `IN_PROGRESS` (dispatched, something left to send), `FINISHED` "
    "(nothing left: completed, replied, bounced or unsubscribed, or every send made, failed or canceled; "
    "`ended_at` set)."
)


def _param(name: str, type_: Any, description: str, **extra: Any) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, **extra)


SEQUENCES_LIST_SCHEMA: dict[str, Any] = {
    "operation_id": "compat_sequences_v1_enrollments_list",
    "tags": ["Compat: sequences v1"],
    "summary": "List sequence enrollments (compat /sequences/v1)",
    "description": (
        "Served as the vendor's document (`compat-sequences-v1-enrollments.md`) describes it. A sequence is a "
        "campaign (journeys are not listed), a person a contact, a mailbox the account's mailbox that "
        "sends to them (`mailbox_id` filters by it, across campaigns); ids are the native API's UUIDs. "
        "Authenticate with `x-api-key: <key>` (`Authorization: Bearer <key>` works too).\n\n"
        + STATUS_RULES
        + "\n\nOrdered by enrollment, oldest first; pages follow `next_cursor` (opaque; null on the last page, and "
        "no empty page follows a full one). Ids of another account match nothing. Timestamps are RFC 3339 UTC "
        "with microseconds.\n\n"
        "**Errors use the vendor's (FastAPI) shape, not the native envelope:** 422 "
        '`{"detail": [{"type", "loc", "msg", "input"}]}` naming each invalid parameter in `loc`; 401 and 405 '
        '`{"detail": "<message>"}`.'
    ),
    "parameters": [
        _param("cursor", str, "Opaque: the `next_cursor` of the previous page. A tampered cursor is a 422."),
        _param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            f"Page size, 1 <= limit <= {MAX_LIMIT} (default {DEFAULT_LIMIT}); out of range or not a number: 422.",
        ),
        _param("sequence_id", {"type": "string", "format": "uuid"}, "String UUID value. Malformed: 422."),
        _param("person_id", {"type": "string", "format": "uuid"}, "String UUID value. Malformed: 422."),
        _param("mailbox_id", {"type": "string", "format": "uuid"}, "String UUID value. Malformed: 422."),
        OpenApiParameter(
            "status",
            {"type": "array", "items": {"type": "string", "enum": list(STATUSES)}},
            OpenApiParameter.QUERY,
            description="Repeat status to filter by several statuses (`?status=DRAFT&status=FINISHED`). "
            + STATUS_RULES
            + " Any other value: 422.",
            style="form",
            explode=True,
        ),
        _param(
            "updated_after",
            {"type": "string", "format": "date-time"},
            "Inclusive lower bound on `updated_at`, RFC 3339 with an offset or `Z`. Malformed: 422.",
        ),
        _param(
            "updated_before",
            {"type": "string", "format": "date-time"},
            "Inclusive upper bound on `updated_at`, RFC 3339 with an offset or `Z`. Malformed: 422.",
        ),
    ],
    "responses": {
        200: OpenApiResponse(
            SequenceEnrollmentPageSerializer, description="Response returned when listing enrollments."
        ),
        401: OpenApiResponse(
            DetailErrorSerializer,
            description="The API key is missing, unknown or revoked.",
            examples=[OpenApiExample("Missing key", value={"detail": "Not authenticated"}, status_codes=[401])],
        ),
        405: OpenApiResponse(DetailErrorSerializer, description="Any method but GET (and OPTIONS)."),
        422: OpenApiResponse(
            ValidationErrorSerializer,
            description="An invalid query parameter, named in `loc`.",
            examples=[
                OpenApiExample(
                    "Limit out of range",
                    value={
                        "detail": [
                            {
                                "type": "less_than_equal",
                                "loc": ["query", "limit"],
                                "msg": "Input should be less than or equal to 100",
                                "input": "101",
                            }
                        ]
                    },
                    status_codes=[422],
                ),
                OpenApiExample(
                    "Unknown status",
                    value={
                        "detail": [
                            {
                                "type": "enum",
                                "loc": ["query", "status", 0],
                                "msg": "Input should be 'DRAFT', 'IN_PROGRESS' or 'FINISHED'",
                                "input": "DONE",
                            }
                        ]
                    },
                    status_codes=[422],
                ),
                OpenApiExample(
                    "Tampered cursor",
                    value={
                        "detail": [
                            {"type": "value_error", "loc": ["query", "cursor"], "msg": "Invalid cursor", "input": "x"}
                        ]
                    },
                    status_codes=[422],
                ),
            ],
        ),
    },
}
