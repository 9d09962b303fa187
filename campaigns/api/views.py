from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns import selectors, services
from contacts.selectors import contact_list
from core.errors import ValidationFailed
from core.lookups import get_or_not_found
from core.schema import MALFORMED_JSON, VALIDATION_FAILED, error_responses
from core.viewsets import AccountScopedViewSet
from enrollments.selectors import campaign_stats
from inbound.selectors import mailbox_imap_status

from .serializers import (
    CampaignCreatedSerializer,
    CampaignCreateInputSerializer,
    CampaignDetailSerializer,
    CampaignListSerializer,
    CampaignPreviewSerializer,
    CampaignShowSerializer,
    CampaignUpdateInputSerializer,
    OutreachCreateInputSerializer,
    OutreachSerializer,
    OutreachUpdateInputSerializer,
    SmtpCredentialSerializer,
    stats_representation,
    unwrap_campaign,
)

CAMPAIGN_NOT_FOUND = (404, "campaign_not_found", "Unknown id, or another account's campaign.")
OUTREACH_NOT_FOUND = (404, "outreach_not_found", "Unknown id, or another account's outreach.")
CONTACT_NOT_FOUND = (404, "contact_not_found", "Unknown contact_id, or another account's contact.")
CREDENTIAL_NOT_FOUND = (404, "smtp_credential_not_found", "No SMTP credential with this id in this campaign.")
PATHS_NOTE = (
    "Validation details are keyed by the path of the value in the body: `name`, `sequence_steps` "
    "(the list), `sequence_steps[1].delay_minutes` (0-based index), `smtp_credentials[0].smtp_port`."
)

SEED_EXAMPLE = {
    "campaign": {
        "name": "Q2 launch",
        "min_wait_seconds": 120,
        "max_wait_seconds": 420,
        "verify_email_mx": True,
        "bounce_rate_threshold": 8.0,
        "smtp_credentials": [
            {
                "label": "Primary",
                "smtp_host": "mail.smtp2go.com",
                "smtp_port": 587,
                "smtp_username": "sales@example.com",
                "smtp_password": "…",
                "daily_limit": 200,
                "imap_host": "imap.gmail.com",
                "imap_port": 993,
                "imap_username": "sales@example.com",
                "imap_password": "…",
            }
        ],
        "sequence_steps": [
            {"position": 1, "subject": "Hi {{first_name|there}}", "body_html": "<p>…</p>", "delay_minutes": 0},
            {"position": 2, "subject": "Re: Hi", "body_html": "<p>…</p>", "delay_minutes": 4320},
        ],
    }
}


@extend_schema_view(
    list=extend_schema(summary="List outreaches", responses={200: OutreachSerializer(many=True)}),
    retrieve=extend_schema(
        summary="Show an outreach", responses={200: OutreachSerializer, **error_responses(OUTREACH_NOT_FOUND)}
    ),
    create=extend_schema(
        summary="Create an outreach",
        request=OutreachCreateInputSerializer,
        responses={201: OutreachSerializer, **error_responses(VALIDATION_FAILED, MALFORMED_JSON)},
    ),
    partial_update=extend_schema(
        summary="Update an outreach",
        request=OutreachUpdateInputSerializer,
        responses={200: OutreachSerializer, **error_responses(OUTREACH_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON)},
    ),
    destroy=extend_schema(
        summary="Delete an outreach",
        description="Its campaigns stay, unlinked (`outreach_id` becomes null).",
        responses={204: None, **error_responses(OUTREACH_NOT_FOUND)},
    ),
)
class OutreachViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    serializer_class = OutreachSerializer
    not_found_code = "outreach_not_found"
    not_found_message = "No outreach with this id."
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.outreach_list(account=self.request.user)

    def create(self, request):
        data = OutreachCreateInputSerializer.validate_input(request.data)
        outreach = services.outreach_create(account=request.user, **data)
        return Response(OutreachSerializer(outreach).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        outreach = self.get_object()
        data = OutreachUpdateInputSerializer.validate_input(request.data)
        return Response(OutreachSerializer(services.outreach_update(outreach=outreach, data=data)).data)

    def destroy(self, request, pk=None):
        services.outreach_delete(outreach=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List campaigns", responses={200: CampaignListSerializer(many=True)}),
    create=extend_schema(
        summary="Create a campaign",
        description=(
            'Body `{"campaign": {...}}` as in the seed (a plain object is accepted too), created with its '
            "credentials and steps in one transaction; answers `{id, status}`. " + PATHS_NOTE
        ),
        request=CampaignCreateInputSerializer,
        examples=[OpenApiExample("Seed example", value=SEED_EXAMPLE, request_only=True)],
        responses={201: CampaignCreatedSerializer, **error_responses(VALIDATION_FAILED, MALFORMED_JSON)},
    ),
    retrieve=extend_schema(
        summary="Show a campaign with its stats",
        description=(
            "The campaign's fields, steps and credentials (no secrets), and at the top level the stats: "
            "`totals` by current status, `rates` (bounce_rate = bounces / messages sent; open and reply rates "
            "over enrollments sent to; %, one decimal), `per_batch`, `recent_bounces` (last 10), "
            "`credentials` (sent_today in the account's time zone, bounce_rate), `skipped` per kind."
        ),
        responses={200: CampaignShowSerializer, **error_responses(CAMPAIGN_NOT_FOUND)},
    ),
    partial_update=extend_schema(
        summary="Update a campaign",
        description=(
            "Updatable: name, min_wait_seconds, max_wait_seconds, outreach_id, verify_email_mx, "
            "bounce_rate_threshold, track_clicks. Any other field is a 422 naming it. Body wrapped in "
            '`{"campaign": {...}}` or plain.'
        ),
        request=CampaignUpdateInputSerializer,
        responses={
            200: CampaignDetailSerializer,
            **error_responses(CAMPAIGN_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON),
        },
    ),
    destroy=extend_schema(
        summary="Delete a campaign",
        description="Cascades to its steps, credentials, enrollments, skips and anything scheduled.",
        responses={204: None, **error_responses(CAMPAIGN_NOT_FOUND)},
    ),
)
class CampaignViewSet(mixins.ListModelMixin, AccountScopedViewSet):
    serializer_class = CampaignListSerializer
    filterset_class = selectors.CampaignFilter
    not_found_code = "campaign_not_found"
    not_found_message = "No campaign with this id."
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if self.action in ("retrieve", "preview"):
            return selectors.campaign_detail_list(account=self.request.user)
        return selectors.campaign_list(account=self.request.user)

    def create(self, request):
        data = CampaignCreateInputSerializer.validate_input(unwrap_campaign(request.data))
        campaign = services.campaign_create(account=request.user, **data)
        return Response(CampaignCreatedSerializer(campaign).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, pk=None):
        campaign = self.get_object()
        credentials = list(campaign.smtp_credentials.all())  # prefetched with IMAP state and messages sent
        messages = {c.pk: c.messages_sent for c in credentials}
        stats = campaign_stats(campaign=campaign, credentials=credentials, messages_by_credential=messages)
        per_credential = {
            credential.pk: {
                "ready": credential.mailbox.is_ready,
                "not_ready_reason": credential.mailbox.not_ready_reason,
                **mailbox_imap_status(credential.mailbox),
            }
            for credential in credentials
        }
        return Response(
            {**CampaignDetailSerializer(campaign).data, **stats_representation(stats, per_credential=per_credential)}
        )

    def partial_update(self, request, pk=None):
        campaign = self.get_object()
        data = CampaignUpdateInputSerializer.validate_input(unwrap_campaign(request.data))
        campaign = services.campaign_update(campaign=campaign, data=data)
        return Response(CampaignDetailSerializer(campaign).data)

    def destroy(self, request, pk=None):
        services.campaign_delete(campaign=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Preview every step for a contact",
        description="Subject and bodies with the contact's merge tags applied, as the recipient would get them.",
        parameters=[OpenApiParameter("contact_id", str, required=True, description="A contact of the account.")],
        responses={
            200: CampaignPreviewSerializer,
            **error_responses(CAMPAIGN_NOT_FOUND, CONTACT_NOT_FOUND, VALIDATION_FAILED),
        },
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def preview(self, request, pk=None):
        campaign = self.get_object()
        contact_id = request.query_params.get("contact_id")
        if not contact_id:
            raise ValidationFailed("contact_id is required.", details={"contact_id": ["This field is required."]})
        contact = get_or_not_found(
            contact_list(account=request.user), contact_id, code="contact_not_found", message="No contact with this id."
        )
        steps = selectors.campaign_preview(campaign=campaign, contact=contact)
        return Response(CampaignPreviewSerializer({"contact_id": contact.pk, "steps": steps}).data)

    @extend_schema(
        summary="Re-enable an SMTP credential",
        description="Clears `disabled_at` (and the reason) of the credential's mailbox: it is back in rotation "
        "for every campaign and journey using it.",
        request=None,
        responses={
            200: SmtpCredentialSerializer,
            **error_responses(CAMPAIGN_NOT_FOUND, CREDENTIAL_NOT_FOUND),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"smtp_credentials/(?P<credential_id>[^/]+)/reenable",
        filterset_class=None,
        pagination_class=None,
    )
    def reenable(self, request, pk=None, credential_id=None):
        campaign = self.get_object()
        credential = get_or_not_found(
            selectors.smtp_credential_list(campaign=campaign),
            credential_id,
            code="smtp_credential_not_found",
            message="No SMTP credential with this id in this campaign.",
        )
        credential = services.smtp_credential_reenable(credential=credential)
        return Response(SmtpCredentialSerializer(credential).data)
