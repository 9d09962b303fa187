"""/api/v1/enrollments: the enrollments of shared/seeds/compat-v1-enrollments.md, over ours.

`id` is the enrollment's integer key, `campaign_id` and `contact_id` our
public (UUID) ids. The seed documents no error body, so errors answer in the
native envelope (`{"error": {"code", "message", "details"}}`) through the
API's global handler, and the schema says so.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.selectors import campaign_list
from contacts.selectors import contact_list
from core.errors import NotFoundError, ValidationFailed
from core.lookups import get_or_not_found
from core.schema import MALFORMED_JSON, VALIDATION_FAILED, error_responses
from enrollments import selectors, services
from enrollments.models import Enrollment
from mailing.tasks import dispatch_batch_soon

DEFAULT_LIMIT, MAX_LIMIT = 25, 100
MAX_PAGE = 2_147_483_647  # any page past the end is empty; this bound keeps the offset an integer PostgreSQL takes
MAX_ID = 2**63 - 1  # the enrollment key is a bigint
TAG = "Compat: v1 enrollments"
ERRORS_NOTE = (
    "The vendor's document shows no error body: errors answer in this API's native envelope "
    '`{"error": {"code", "message", "details"}}`.'
)

CAMPAIGN_NOT_FOUND = (404, "campaign_not_found", "No campaign of the account with this `campaign_id` (journeys too).")
CONTACT_NOT_FOUND = (404, "contact_not_found", "No contact of the account with this `contact_id`.")
ENROLLMENT_NOT_FOUND = (404, "enrollment_not_found", "Unknown or malformed id, another account's, or a journey's.")
ALREADY_ENROLLED = (
    422,
    "contact_already_enrolled",
    "The contact is in the campaign now, or finished it less than 12 hours ago.",
)
UNSUBSCRIBED = (422, "contact_unsubscribed", "The contact is unsubscribed.")
SIBLING = (
    422,
    "contact_in_sibling_campaign",
    "The contact is in another campaign of an outreach with `unique_contacts`.",
)
BAD_QUERY = (422, "validation_failed", "`limit`, `page` or `completed` out of range or malformed; `details` names it.")


class CompatV1EnrollmentSerializer(serializers.ModelSerializer):
    """The seed's enrollment model."""

    id = serializers.IntegerField(help_text="The enrollment's id (an integer).")
    campaign_id = serializers.UUIDField(help_text="The campaign's id (the `id` of /api/campaigns).")
    contact_id = serializers.UUIDField(help_text="The contact's id (the `id` of /api/contacts).")
    enrolled_at = serializers.DateTimeField(source="created_at", help_text="When the contact was enrolled.")
    completed = serializers.BooleanField(
        help_text="Nothing is left to send (the last step went out) or the sequence stopped (reply, bounce, "
        "unsubscribe)."
    )

    class Meta:
        model = Enrollment
        fields = ["id", "campaign_id", "contact_id", "enrolled_at", "completed", "created_at", "updated_at"]
        read_only_fields = fields


class CompatV1PaginationSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    limit = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Enrollments matching the filters, on every page.")
    total_pages = serializers.IntegerField(help_text="ceil(total / limit); 0 when nothing matches.")


class CompatV1EnrollmentPageSerializer(serializers.Serializer):
    enrollments = CompatV1EnrollmentSerializer(many=True)
    pagination = CompatV1PaginationSerializer()


class CompatV1EnrollInputSerializer(serializers.Serializer):
    """Unknown keys are ignored, as the vendor does."""

    campaign_id = serializers.CharField(help_text="ID of the campaign to enroll the contact in.")
    contact_id = serializers.CharField(help_text="ID of the contact to enroll.")


def _integer(request, name: str, *, default: int, maximum: int) -> int:
    """The query parameter `name`, a whole number from 1 to `maximum`; anything else is a 422 naming it."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 20 else 0
    if not 1 <= value <= maximum:
        message = f"Must be a whole number from 1 to {maximum}."
        raise ValidationFailed(f"{name}: {message}", details={name: [message]})
    return value


def _boolean(request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    value = {"true": True, "1": True, "false": False, "0": False}.get(raw.lower())
    if value is None:
        message = "Must be true or false."
        raise ValidationFailed(f"{name}: {message}", details={name: [message]})
    return value


def _uuid_filter(request, name: str) -> tuple[bool, uuid.UUID | None]:
    """(given, value): a malformed id, like an unknown one, matches no enrollment (`value` None)."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return False, None
    try:
        return True, uuid.UUID(raw)
    except ValueError:
        return True, None


def _shown(account, enrollment_id: Any) -> Enrollment:
    """One enrollment of the account's campaigns, or 404 `enrollment_not_found` (a malformed id too)."""
    raw = str(enrollment_id)
    pk = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0
    found = selectors.account_enrollment_list(account=account).filter(pk=pk).first() if 1 <= pk <= MAX_ID else None
    if found is None:
        raise NotFoundError("No enrollment with this id.", code="enrollment_not_found")
    return found


def _example(title: str, value: Any, **kwargs) -> OpenApiExample:
    return OpenApiExample(title, value=value, **kwargs)


SEED_ENROLLMENT = {
    "id": 1,
    "campaign_id": "camp_Kd93lftgZXGRbxqoj",
    "contact_id": "cont_KYdl3lftgZXGRbxqoj",
    "enrolled_at": "2025-02-17T02:00:34Z",
    "completed": False,
    "created_at": "2025-02-17T02:00:34Z",
    "updated_at": "2025-02-17T02:00:34Z",
}
ID_PARAMETER = OpenApiParameter(
    "enrollment_id",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    OpenApiParameter.PATH,
    description="The enrollment's integer `id`; a malformed or out-of-range one is a 404.",
)


class CompatEnrollmentListView(APIView):
    """GET and POST /api/v1/enrollments."""

    http_method_names = ["get", "post", "head", "options"]

    @extend_schema(
        operation_id="compat_v1_enrollments_list",
        tags=[TAG],
        summary="List all enrollments (compat /v1)",
        description=(
            "The account's enrollments in its campaigns (a journey's are not listed), most recently created first "
            "(by `id`, which grows with every enrollment created). Page pagination: `page` and `limit`; a page past "
            "the end is an empty list with the same `pagination` totals. `completed` is true when nothing is left "
            "to send (the last step went out) or the sequence stopped (reply, bounce, unsubscribe). A malformed or "
            "unknown `campaign_id`/`contact_id` (another account's too) matches nothing: an empty list.\n\n"
            "`total` is cheap: without `contact_id` and `completed` it is summed from the campaigns' enrollment "
            "tally (kept exact by triggers); with `contact_id` it counts that contact's few enrollments; with "
            "`completed` alone it counts the account's enrollments. Pages are offset-based, as the vendor's page "
            "numbers require: page N reads the N x limit newest keys of the account's campaigns.\n\n" + ERRORS_NOTE
        ),
        parameters=[
            OpenApiParameter("campaign_id", str, description="Filter enrollments by campaign ID."),
            OpenApiParameter("contact_id", str, description="Filter enrollments by contact ID."),
            OpenApiParameter(
                "completed", bool, description="Filter by completion status (`true` or `false`; `1`/`0` too)."
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                description=f"Number of results per page (1 to {MAX_LIMIT}). Defaults to {DEFAULT_LIMIT}; "
                "anything else is a 422 naming `limit`.",
            ),
            OpenApiParameter(
                "page",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
                description=f"Page number (1 to {MAX_PAGE}). Defaults to 1; anything else is a 422 naming `page`.",
            ),
        ],
        responses={
            200: CompatV1EnrollmentPageSerializer,
            **error_responses(BAD_QUERY),
        },
        examples=[
            _example(
                "Response",
                {
                    "enrollments": [SEED_ENROLLMENT],
                    "pagination": {"page": 1, "limit": 25, "total": 1, "total_pages": 1},
                },
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request):
        limit = _integer(request, "limit", default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        page = _integer(request, "page", default=1, maximum=MAX_PAGE)
        completed = _boolean(request, "completed")
        filters: dict[str, Any] = {"completed": completed}
        nothing = False
        for name in ("campaign_id", "contact_id"):
            given, value = _uuid_filter(request, name)
            filters[name] = value
            nothing = nothing or (given and value is None)
        total = 0 if nothing else selectors.account_enrollment_count(account=request.user, **filters)
        offset = (page - 1) * limit
        rows = []
        if offset < total:  # a page past the end reads nothing
            rows = selectors.account_enrollment_page(account=request.user, offset=offset, limit=limit, **filters)
        body = {
            "enrollments": CompatV1EnrollmentSerializer(rows, many=True).data,
            "pagination": {"page": page, "limit": limit, "total": total, "total_pages": math.ceil(total / limit)},
        }
        return Response(body)

    @extend_schema(
        operation_id="compat_v1_enrollments_create",
        tags=[TAG],
        summary="Create an enrollment (compat /v1)",
        description=(
            "Enrolls a contact in a campaign; the body may be JSON or form fields (the vendor's curl sends "
            "`-d campaign_id=… -d contact_id=…`). Unknown keys are ignored.\n\n"
            "On a campaign already dispatched (active or completed) the enrollment's sends are scheduled at "
            "once, as a dispatch of one: step 1 behind what is already scheduled, within the SMTP credentials' "
            "daily limits (the next day with room when today is full), later steps at their delays. On a "
            "campaign not yet dispatched it joins the lowest batch and waits for the first dispatch; on a paused "
            "one it waits for a dispatch of its batch.\n\n"
            "Already enrolled recently (422 `contact_already_enrolled`): the contact is in the campaign now, or "
            "finished it less than 12 hours ago. One who finished it earlier is enrolled again (a new "
            "enrollment with a new `id`). A journey's id is not a campaign's here (404 `campaign_not_found`).\n\n"
            + ERRORS_NOTE
        ),
        request={
            "application/json": CompatV1EnrollInputSerializer,
            "application/x-www-form-urlencoded": CompatV1EnrollInputSerializer,
        },
        examples=[
            _example(
                "Request",
                {"campaign_id": "camp_Kd93lftgZXGRbxqoj", "contact_id": "cont_KYdl3lftgZXGRbxqoj"},
                request_only=True,
            ),
            _example("Response", SEED_ENROLLMENT, response_only=True, status_codes=["201"]),
        ],
        responses={
            201: CompatV1EnrollmentSerializer,
            **error_responses(
                CAMPAIGN_NOT_FOUND,
                CONTACT_NOT_FOUND,
                ALREADY_ENROLLED,
                UNSUBSCRIBED,
                SIBLING,
                VALIDATION_FAILED,
                MALFORMED_JSON,
            ),
        },
    )
    def post(self, request):
        serializer = CompatV1EnrollInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        campaign = get_or_not_found(
            campaign_list(account=request.user),
            data["campaign_id"],
            code="campaign_not_found",
            message="No campaign with this id.",
        )
        contact = get_or_not_found(
            contact_list(account=request.user),
            data["contact_id"],
            code="contact_not_found",
            message="No contact with this id.",
        )
        enrollment = services.enrollment_start(campaign=campaign, contact=contact, dispatch_batch=dispatch_batch_soon)
        return Response(
            CompatV1EnrollmentSerializer(_shown(request.user, enrollment.pk)).data, status=status.HTTP_201_CREATED
        )


class CompatEnrollmentDetailView(APIView):
    """GET and DELETE /api/v1/enrollments/:id."""

    http_method_names = ["get", "delete", "head", "options"]

    @extend_schema(
        operation_id="compat_v1_enrollments_retrieve",
        tags=[TAG],
        summary="Retrieve an enrollment (compat /v1)",
        description="Retrieves an enrollment by its integer id.\n\n" + ERRORS_NOTE,
        parameters=[ID_PARAMETER],
        examples=[_example("Response", SEED_ENROLLMENT, response_only=True, status_codes=["200"])],
        responses={200: CompatV1EnrollmentSerializer, **error_responses(ENROLLMENT_NOT_FOUND)},
    )
    def get(self, request, enrollment_id=None):
        return Response(CompatV1EnrollmentSerializer(_shown(request.user, enrollment_id)).data)

    @extend_schema(
        operation_id="compat_v1_enrollments_destroy",
        tags=[TAG],
        summary="Delete an enrollment (compat /v1)",
        description=(
            "Removes the enrollment and, in the same transaction, every send it still has scheduled, so no further "
            "message goes out for that contact in the campaign. Answers 204 with no body.\n\n" + ERRORS_NOTE
        ),
        parameters=[ID_PARAMETER],
        responses={204: None, **error_responses(ENROLLMENT_NOT_FOUND)},
    )
    def delete(self, request, enrollment_id=None):
        services.enrollment_delete(enrollment=_shown(request.user, enrollment_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
