"""The compat enroll's own error shapes and its OpenAPI description.

The vendor's document (shared/seeds/compat-v1-journeys-enroll.md) answers
errors as `{"error": "<message>"}`, or `{"error": {"<param>": [...]}}` for
invalid parameters, never in the native envelope; its view uses
`compat_exception_handler` instead of the API's global handler. Every refusal
the services raise keeps its status; only the body changes.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from core.errors import ApplicationError, NotFoundError, ValidationFailed
from journeys.services import MAX_CONTACT_ADDRESSES, MAX_LIST_ADDRESSES

from .serializers import (
    NOT_A_LIST_OF_STRINGS,
    CompatEnrollInputSerializer,
    CompatEnrollResultSerializer,
    CompatErrorSerializer,
)

JOURNEY_NOT_FOUND = "Journey not found"
UNAUTHORIZED = "Unauthorized"
NOT_JSON = "the request body is not valid JSON"


def _messages(detail: Any) -> Any:
    """DRF's ErrorDetail trees as plain strings, lists and dicts."""
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_messages(value) for value in detail]
    return str(detail)


def compat_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Errors of the compat enroll as the seed shows them: `{"error": "<message>"}` with the status, and
    `{"error": {"<param>": [...]}}` (422) for invalid parameters. None (a 500) only for a real bug."""
    if isinstance(exc, NotFoundError | Http404 | drf_exceptions.NotFound):
        return Response({"error": JOURNEY_NOT_FOUND}, status=404)
    if isinstance(exc, ValidationFailed):
        return Response({"error": exc.details or {"base": [exc.message]}}, status=exc.status_code)
    if isinstance(exc, ApplicationError):
        return Response({"error": exc.message}, status=exc.status_code)
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        headers = {"WWW-Authenticate": exc.auth_header} if getattr(exc, "auth_header", None) else {}
        return Response({"error": UNAUTHORIZED}, status=401, headers=headers)
    if isinstance(exc, drf_exceptions.ParseError):
        return Response({"error": {"base": [NOT_JSON]}}, status=422)
    if isinstance(exc, drf_exceptions.ValidationError):  # the JSON parser's refusal of NUL characters
        detail = _messages(exc.detail)
        detail = {"base": detail.pop("non_field_errors"), **detail} if isinstance(detail, dict) else {"base": detail}
        return Response({"error": detail}, status=422)
    if isinstance(exc, DjangoValidationError):
        return Response({"error": {"base": exc.messages}}, status=422)
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return Response({"error": "Method Not Allowed"}, status=405, headers={"Allow": "POST"})
    if isinstance(exc, PermissionDenied | drf_exceptions.PermissionDenied):
        return Response({"error": "Forbidden"}, status=403)
    if isinstance(exc, drf_exceptions.APIException):  # 406, 415, 429…
        return Response({"error": str(exc.detail)}, status=exc.status_code)
    return None


# --- OpenAPI ---------------------------------------------------------------------------------------------

SEED_PAYLOADS = [
    OpenApiExample(
        "Enroll individual contacts",
        value={"contact_email_addresses": ["user1@example.com", "user2@example.com", "user3@example.com"]},
        request_only=True,
    ),
    OpenApiExample(
        "Enroll all members of lists",
        value={"list_email_addresses": ["team@company.com", "engineering@company.com"]},
        request_only=True,
    ),
    OpenApiExample(
        "Combine both methods",
        value={"contact_email_addresses": ["user1@example.com"], "list_email_addresses": ["team@company.com"]},
        request_only=True,
    ),
]


def _error(title: str, body: dict, status_code: int) -> OpenApiExample:
    return OpenApiExample(title, value=body, status_codes=[status_code], response_only=True)


UNIQUE_LIST_ADDRESSES = (
    "List email addresses are unique per account (a database constraint), so the vendor's "
    '"Multiple lists (N) found with email address: …" 422 cannot occur here.'
)

COMPAT_ENROLL_SCHEMA: dict[str, Any] = {
    "operation_id": "compat_v1_journeys_enroll",
    "tags": ["Compat: journeys"],
    "summary": "Enroll contacts in a journey (compat /v1)",
    "description": (
        "Served as the vendor's document (`compat-v1-journeys-enroll.md`) describes it, errors included: "
        'they answer `{"error": "<message>"}` or, for invalid parameters, `{"error": {"<param>": [...]}}`, '
        "not the native envelope.\n\n"
        "Enrolls the contacts named in `contact_email_addresses` and every member of the lists named in "
        f"`list_email_addresses` (at most {MAX_CONTACT_ADDRESSES} and {MAX_LIST_ADDRESSES} addresses). "
        "Addresses are trimmed and lowercased before matching; a person named twice, or by an address and "
        "a list, or by two lists, counts once. A person is enrolled when the journey is `on`, the contact "
        "is active in the account (an unsubscribed contact counts as not found), not enrolled in the journey "
        "now, and did not complete it within the last 12 hours (`recently_completed`); one who completed it "
        "earlier is enrolled again, as a new round. `not_enrolled.not_found` lists only the entries of "
        "`contact_email_addresses` that match no active contact, never list members. When nobody can be "
        "enrolled the answer is still 200 with `enrolled_count: 0`. Step 1 of each new enrollment is due "
        "now (paced by the journey's wait between sends), later steps at their cumulative delays.\n\n"
        + UNIQUE_LIST_ADDRESSES
        + "\n\nThe body may also be form-encoded (`contact_email_addresses[]=…`). Unknown keys are ignored."
    ),
    "parameters": [
        OpenApiParameter(
            "journey_id", str, OpenApiParameter.PATH, description="The journey's id (the `id` of /api/journeys)."
        )
    ],
    "request": CompatEnrollInputSerializer,
    "examples": SEED_PAYLOADS,
    "responses": {
        200: OpenApiResponse(
            CompatEnrollResultSerializer,
            description="Enrolled (possibly nobody), with who was not enrolled and why.",
            examples=[
                _error(
                    "Success response",
                    {
                        "enrolled_count": 2,
                        "not_enrolled": {
                            "not_found": ["unknown@example.com"],
                            "already_enrolled": ["already.in@example.com"],
                            "recently_completed": ["just.finished@example.com"],
                        },
                    },
                    200,
                ),
                _error(
                    "Nobody could be enrolled",
                    {
                        "enrolled_count": 0,
                        "not_enrolled": {
                            "not_found": ["unknown@example.com"],
                            "already_enrolled": [],
                            "recently_completed": [],
                        },
                    },
                    200,
                ),
            ],
        ),
        401: OpenApiResponse(
            CompatErrorSerializer,
            description="Unauthorized - Invalid or missing API token (`Authorization: Bearer` or `x-api-key`).",
            examples=[_error("Unauthorized", {"error": UNAUTHORIZED}, 401)],
        ),
        404: OpenApiResponse(
            CompatErrorSerializer,
            description="Journey not found or does not belong to your company (also for a malformed id).",
            examples=[_error("Journey not found", {"error": JOURNEY_NOT_FOUND}, 404)],
        ),
        405: OpenApiResponse(
            CompatErrorSerializer,
            description="Any method but POST.",
            examples=[_error("Method not allowed", {"error": "Method Not Allowed"}, 405)],
        ),
        422: OpenApiResponse(
            CompatErrorSerializer,
            description=(
                "Invalid request - journey is not in on state, list not found, or invalid parameters. "
                + UNIQUE_LIST_ADDRESSES
            ),
            examples=[
                _error(
                    "Journey not active",
                    {"error": "Journey must be in 'on' state to enroll people. Current state: draft"},
                    422,
                ),
                _error(
                    "No emails provided",
                    {
                        "error": {
                            "base": ["at least one of contact_email_addresses or list_email_addresses must be provided"]
                        }
                    },
                    422,
                ),
                _error("List not found", {"error": "No list found with email address: nonexistent@company.com"}, 422),
                _error(
                    "Too many contact addresses",
                    {
                        "error": {
                            "contact_email_addresses": [
                                f"at most {MAX_CONTACT_ADDRESSES} addresses per request (1001 given)"
                            ]
                        }
                    },
                    422,
                ),
                _error(
                    "Too many list addresses",
                    {
                        "error": {
                            "list_email_addresses": [f"at most {MAX_LIST_ADDRESSES} addresses per request (101 given)"]
                        }
                    },
                    422,
                ),
                _error(
                    "Not an array of strings",
                    {"error": {"contact_email_addresses": [NOT_A_LIST_OF_STRINGS]}},
                    422,
                ),
                _error("Malformed JSON", {"error": {"base": [NOT_JSON]}}, 422),
            ],
        ),
    },
}
