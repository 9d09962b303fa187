"""/api/journeys (native) and POST /api/v1/journeys/:id/enroll (compat, in the seed's shapes)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ValidationFailed
from core.lookups import get_or_not_found
from core.schema import MALFORMED_JSON, VALIDATION_FAILED, error_responses
from core.viewsets import AccountScopedViewSet
from journeys import selectors, services
from journeys.models import Journey, JourneyEnrollment

from .compat import COMPAT_ENROLL_SCHEMA, compat_exception_handler
from .serializers import (
    JourneyCreateInputSerializer,
    JourneyEnrollmentSerializer,
    JourneyListSerializer,
    JourneySerializer,
    JourneyUpdateInputSerializer,
    compat_address_list,
    compat_enroll_result,
)

JOURNEY_NOT_FOUND = (404, "journey_not_found", "Unknown or malformed id, or another account's journey.")
JOURNEY_INCOMPLETE = (422, "journey_incomplete", "The journey has no step or no SMTP credential (`details.missing`).")
JOURNEY_NOT_ON = (422, "journey_not_on", "A draft journey cannot be turned off.")
PATHS_NOTE = (
    "Validated like a campaign's; details are keyed by the path of the value in the body: `name`, `steps` "
    "(the list), `steps[1].delay_minutes` (0-based index), `smtp_credentials[0].smtp_port`."
)
STATES_NOTE = (
    "`state`: `draft` (created; nobody can be enrolled), `on` (enrolls people and sends), `off` (its "
    "scheduled sends are held; turning it on again releases them with their gaps kept)."
)
CREATE_EXAMPLE = {
    "name": "Onboarding",
    "min_wait_seconds": 60,
    "max_wait_seconds": 300,
    "steps": [
        {"position": 1, "subject": "Welcome {{first_name|there}}", "body_html": "<p>…</p>", "delay_minutes": 0},
        {"position": 2, "subject": "How is it going?", "body_html": "<p>…</p>", "delay_minutes": 1440},
    ],
    "smtp_credentials": [
        {
            "label": "Primary",
            "smtp_host": "mail.smtp2go.com",
            "smtp_port": 587,
            "smtp_username": "hello@example.com",
            "smtp_password": "…",
            "daily_limit": 200,
        }
    ],
}


def _choice(request, name: str, choices) -> str | None:
    """The query parameter `name`, one of `choices` (absent: None); anything else is a 422 naming it."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value not in choices:
        message = f"Must be one of {', '.join(choices)}."
        raise ValidationFailed(f"{name}: {message}", details={name: [message]})
    return value


@extend_schema_view(
    list=extend_schema(
        summary="List journeys",
        description="Oldest first. " + STATES_NOTE,
        parameters=[OpenApiParameter("state", enum=Journey.State.values)],
        responses={200: JourneyListSerializer(many=True), **error_responses(VALIDATION_FAILED)},
    ),
    retrieve=extend_schema(
        summary="Show a journey",
        description=(
            "Its options, steps, SMTP credentials (never a password: `imap_configured` instead) and its "
            "enrollments counted by status: `active` (steps still to go), `completed` (its last step went out), "
            "`exited` (stopped by a bounce, a reply or an unsubscribe). " + STATES_NOTE
        ),
        responses={200: JourneySerializer, **error_responses(JOURNEY_NOT_FOUND)},
    ),
    create=extend_schema(
        summary="Create a journey",
        description="A `draft` journey with its steps and SMTP credentials, in one transaction. " + PATHS_NOTE,
        request=JourneyCreateInputSerializer,
        examples=[OpenApiExample("A two-step journey", value=CREATE_EXAMPLE, request_only=True)],
        responses={201: JourneySerializer, **error_responses(VALIDATION_FAILED, MALFORMED_JSON)},
    ),
    partial_update=extend_schema(
        summary="Update a journey",
        description=(
            "Name and options; `steps` and `smtp_credentials`, when given, are the whole new lists: an item with "
            "the `id` of a stored one changes it (a credential keeps its passwords unless the item has them), an "
            "item without one is added, a stored one left out is deleted. " + PATHS_NOTE
        ),
        request=JourneyUpdateInputSerializer,
        responses={200: JourneySerializer, **error_responses(JOURNEY_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON)},
    ),
    destroy=extend_schema(
        summary="Delete a journey",
        description="With its steps, credentials, enrollments and everything scheduled for them.",
        responses={204: None, **error_responses(JOURNEY_NOT_FOUND)},
    ),
)
class JourneyViewSet(mixins.ListModelMixin, AccountScopedViewSet):
    serializer_class = JourneyListSerializer
    not_found_code = "journey_not_found"
    not_found_message = "No journey with this id."
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if self.action == "list":
            state = _choice(self.request, "state", Journey.State.values)
            return selectors.journey_list(account=self.request.user, state=state)
        if self.action == "retrieve":
            return selectors.journey_detail_list(account=self.request.user)
        return selectors.journey_list(account=self.request.user)

    def _shown(self, journey: Journey, *, fetch: bool = True) -> dict:
        """The journey as `JourneySerializer` renders it (read again with its steps and credentials)."""
        if fetch:
            journey = selectors.journey_detail_list(account=self.request.user).get(pk=journey.pk)
        journey.enrollment_counts = selectors.journey_enrollment_counts(journey=journey)
        return JourneySerializer(journey).data

    def create(self, request):
        data = JourneyCreateInputSerializer.validate_input(request.data)
        journey = services.journey_create(account=request.user, **data)
        return Response(self._shown(journey), status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        return Response(self._shown(self.get_object(), fetch=False))

    def partial_update(self, request, pk=None):
        journey = self.get_object()
        data = dict(JourneyUpdateInputSerializer.validate_input(request.data))
        steps, credentials = data.pop("steps", None), data.pop("smtp_credentials", None)
        journey = services.journey_update(journey=journey, data=data, steps=steps, smtp_credentials=credentials)
        return Response(self._shown(journey))

    def destroy(self, request, pk=None):
        services.journey_delete(journey=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Turn a journey on",
        description=(
            "draft or off → on (on stays on). Turning an `off` journey on releases its held sends, later steps "
            "shifted so the gaps between steps are kept; enrollments waiting for a first send are scheduled."
        ),
        request=None,
        responses={200: JourneySerializer, **error_responses(JOURNEY_NOT_FOUND, JOURNEY_INCOMPLETE)},
    )
    @action(detail=True, methods=["post"], pagination_class=None)
    def turn_on(self, request, pk=None):
        return Response(self._shown(services.journey_turn_on(journey=self.get_object())))

    @extend_schema(
        summary="Turn a journey off",
        description="on → off (off stays off): its scheduled sends are held until it is turned on again.",
        request=None,
        responses={200: JourneySerializer, **error_responses(JOURNEY_NOT_FOUND, JOURNEY_NOT_ON)},
    )
    @action(detail=True, methods=["post"], pagination_class=None)
    def turn_off(self, request, pk=None):
        return Response(self._shown(services.journey_turn_off(journey=self.get_object())))

    @extend_schema(
        summary="List a journey's enrollments",
        description=(
            "Every enrollment, every round (a contact may go through a journey again once its last enrollment "
            "is not active and did not complete within 12 hours), oldest first. `id` is the enrollment's id "
            "in webhook events."
        ),
        parameters=[OpenApiParameter("status", enum=JourneyEnrollment.JourneyStatus.values)],
        responses={
            200: JourneyEnrollmentSerializer(many=True),
            **error_responses(JOURNEY_NOT_FOUND, VALIDATION_FAILED),
        },
        filters=False,
    )
    @action(detail=True, methods=["get"])
    def enrollments(self, request, pk=None):
        journey = self.get_object()
        wanted = _choice(request, "status", JourneyEnrollment.JourneyStatus.values)
        self.keyset_fields = ("created_at", "id")
        enrollments = selectors.journey_enrollment_list(journey=journey, status=wanted)
        return self.paginated(enrollments, JourneyEnrollmentSerializer)


class CompatJourneyEnrollView(APIView):
    """POST /api/v1/journeys/:id/enroll, in the seed's shapes (`compat.py`), errors included."""

    http_method_names = ["post"]

    def get_exception_handler(self):
        return compat_exception_handler

    @extend_schema(**COMPAT_ENROLL_SCHEMA)
    def post(self, request, journey_id=None):
        journey = get_or_not_found(
            selectors.journey_list(account=request.user),
            journey_id,
            code="journey_not_found",
            message="Journey not found",
        )
        data = request.data
        if not hasattr(data, "get"):  # a JSON array, string or number
            raise ValidationFailed("The body must be an object.", details={"base": ["the body must be a JSON object"]})
        errors, addresses = {}, {}
        for name in ("contact_email_addresses", "list_email_addresses"):
            addresses[name], problems = compat_address_list(data, name)
            if problems:
                errors[name] = problems
        if errors:
            raise ValidationFailed("Invalid parameters.", details=errors)
        result = services.journey_enroll(journey=journey, **addresses)
        return Response(compat_enroll_result(result))
