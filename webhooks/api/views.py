from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.lookups import get_or_not_found
from core.schema import MALFORMED_JSON, VALIDATION_FAILED, error_responses
from core.viewsets import AccountScopedViewSet
from webhooks import selectors, services
from webhooks.events import EVENT_TYPES, NOT_SUBSCRIBABLE
from webhooks.models import WebhookDelivery
from webhooks.urlsafety import URL_INVALID, URL_PRIVATE_ADDRESS, URL_SCHEME_NOT_ALLOWED

from .event_schema import component_name
from .serializers import (
    WebhookDeliverySerializer,
    WebhookEndpointCreateInputSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateInputSerializer,
    WebhookEndpointWithSecretSerializer,
    WebhookEventTypeSerializer,
)

ENDPOINT_NOT_FOUND = (404, "webhook_endpoint_not_found", "Unknown id, or another account's endpoint.")
DELIVERY_NOT_FOUND = (404, "webhook_delivery_not_found", "Unknown id, or a delivery of another account.")
ENDPOINT_DISABLED = (409, "webhook_endpoint_disabled", "The endpoint is disabled; PATCH enabled=true first.")
DELIVERY_IN_PROGRESS = (409, "webhook_delivery_in_progress", "An attempt of this delivery is running right now.")
URL_ERRORS = (
    (422, URL_INVALID, "The URL is malformed, too long, carries credentials or spells an IP oddly."),
    (422, URL_SCHEME_NOT_ALLOWED, "The URL is not https (plain http only where private URLs are allowed)."),
    (422, URL_PRIVATE_ADDRESS, "The host is a private, loopback, link-local… address or a local name."),
)
EVENTS_UNKNOWN = (422, "webhook_event_type_unknown", "`events` names a type that does not exist.")

DELIVERY_DESCRIPTION = (
    "Deliveries are at least once: each is POSTed with the headers `webhook-id` (the event id, the same on "
    "every retry: deduplicate on it), `webhook-timestamp` and `webhook-signature` (Standard Webhooks; verify "
    "with any Standard Webhooks library and the endpoint's secret). A 2xx answer is success; anything else, "
    "a redirect (never followed), or no answer within 15 s is retried with jitter: immediately, then after "
    "5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h; `Retry-After` is honoured on 429 and 503. A 410 "
    "disables the endpoint at once; an endpoint whose every delivery fails for 5 days is disabled too, and "
    "`webhook_endpoint.disabled` is sent to the account's other endpoints. Events are NOT delivered in order, "
    "not even per endpoint: use `created_at` in the payload to order them."
)


@extend_schema_view(
    list=extend_schema(
        summary="List webhook endpoints",
        description=DELIVERY_DESCRIPTION,
        responses={200: WebhookEndpointSerializer(many=True), **error_responses(VALIDATION_FAILED)},
    ),
    retrieve=extend_schema(
        summary="Show a webhook endpoint (never its secret)",
        responses={200: WebhookEndpointSerializer, **error_responses(ENDPOINT_NOT_FOUND)},
    ),
    create=extend_schema(
        summary="Create a webhook endpoint",
        description="Answers the signing secret this once. " + DELIVERY_DESCRIPTION,
        request=WebhookEndpointCreateInputSerializer,
        responses={
            201: WebhookEndpointWithSecretSerializer,
            **error_responses(VALIDATION_FAILED, MALFORMED_JSON, EVENTS_UNKNOWN, *URL_ERRORS),
        },
    ),
    partial_update=extend_schema(
        summary="Update a webhook endpoint",
        request=WebhookEndpointUpdateInputSerializer,
        responses={
            200: WebhookEndpointSerializer,
            **error_responses(ENDPOINT_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON, EVENTS_UNKNOWN, *URL_ERRORS),
        },
    ),
    destroy=extend_schema(
        summary="Delete a webhook endpoint and its deliveries",
        responses={204: None, **error_responses(ENDPOINT_NOT_FOUND)},
    ),
)
class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    serializer_class = WebhookEndpointSerializer
    keyset_fields = ("created_at", "id")
    not_found_code = "webhook_endpoint_not_found"
    not_found_message = "No webhook endpoint with this id."
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.webhook_endpoint_list(account=self.request.user)

    def create(self, request):
        data = WebhookEndpointCreateInputSerializer.validate_input(request.data)
        endpoint = services.webhook_endpoint_create(account=request.user, **data)
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        data = WebhookEndpointUpdateInputSerializer.validate_input(request.data)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, data=data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    def destroy(self, request, pk=None):
        services.webhook_endpoint_delete(endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate the signing secret",
        description=(
            "Answers the new secret this once. For 24 hours every delivery carries two signatures in "
            "`webhook-signature`, one per secret, space-separated, so receivers can switch at their pace. "
            "Rotating again within the 24 hours drops the oldest secret."
        ),
        request=None,
        responses={200: WebhookEndpointWithSecretSerializer, **error_responses(ENDPOINT_NOT_FOUND)},
    )
    @action(detail=True, methods=["post"])
    def rotate_secret(self, request, pk=None):
        endpoint = services.webhook_endpoint_rotate_secret(endpoint=self.get_object())
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)

    @extend_schema(
        summary="Send a test event",
        description="Records a `webhook.test` event delivered to this endpoint only; see its deliveries.",
        request=None,
        responses={
            202: WebhookDeliverySerializer,
            **error_responses(ENDPOINT_NOT_FOUND, ENDPOINT_DISABLED),
        },
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        endpoint = self.get_object()
        event = services.webhook_endpoint_test(endpoint=endpoint)
        delivery = selectors.webhook_delivery_list(account=request.user, endpoint=endpoint).get(event=event)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="List an endpoint's recent deliveries",
        description=(
            "Newest first, each with its status, the last answer (status code, duration, error), when the "
            "next retry is due and its latest attempts. Filter with `status` and `event_type`."
        ),
        responses={
            200: WebhookDeliverySerializer(many=True),
            **error_responses(ENDPOINT_NOT_FOUND, VALIDATION_FAILED),
        },
        parameters=[
            OpenApiParameter("status", str, enum=[s.value for s in WebhookDelivery.Status]),
            OpenApiParameter("event_type", str, enum=list(EVENT_TYPES)),
        ],
    )
    @action(detail=True, methods=["get"], keyset_fields=("-created_at", "-id"))
    def deliveries(self, request, pk=None):
        endpoint = self.get_object()
        queryset = selectors.webhook_delivery_list(
            account=request.user, endpoint=endpoint, filters=request.query_params
        )
        return self.paginated(queryset, WebhookDeliverySerializer)

    @extend_schema(
        summary="Redeliver a delivery",
        description=(
            "Queues the delivery again from the start of the retry schedule, whatever its status (a "
            "succeeded one is sent again with the same `webhook-id`)."
        ),
        request=None,
        responses={
            202: WebhookDeliverySerializer,
            **error_responses(DELIVERY_NOT_FOUND, ENDPOINT_DISABLED, DELIVERY_IN_PROGRESS),
        },
    )
    @action(detail=False, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[^/]+)/redeliver")
    def redeliver(self, request, delivery_id=None):
        queryset = selectors.webhook_delivery_list(account=request.user).select_related("endpoint")
        delivery = get_or_not_found(
            queryset, delivery_id, code="webhook_delivery_not_found", message="No webhook delivery with this id."
        )
        services.webhook_delivery_redeliver(delivery=delivery)
        delivery = queryset.get(pk=delivery.pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookEventTypeListView(APIView):
    @extend_schema(
        summary="List webhook event types and their payloads",
        description=(
            'Every event is POSTed as `{"id", "type", "created_at", "data"}`. The `data` of each type is '
            "documented by the component named in `payload_schema` (see the `WebhookEventPayload` schema, "
            "one variant per type). " + DELIVERY_DESCRIPTION
        ),
        responses={200: WebhookEventTypeSerializer(many=True), **error_responses()},
    )
    def get(self, request):
        rows = [
            {
                "type": event_type,
                "description": description,
                "subscribable": event_type not in NOT_SUBSCRIBABLE,
                "payload_schema": f"#/components/schemas/{component_name(event_type)}",
            }
            for event_type, description in EVENT_TYPES.items()
        ]
        return Response(WebhookEventTypeSerializer(rows, many=True).data)
