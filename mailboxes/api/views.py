"""/api/mailboxes: the account's mailboxes, their view (usage, health, users, forecast), and OAuth2 connection."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.schema import MALFORMED_JSON, VALIDATION_FAILED, error_responses
from core.viewsets import AccountScopedViewSet
from inbound.selectors import mailbox_imap_status
from mailboxes import selectors, services
from mailing.selectors import mailbox_forecast, mailbox_usage

from .serializers import (
    MailboxCreateInputSerializer,
    MailboxDetailSerializer,
    MailboxOAuthStartSerializer,
    MailboxSerializer,
    MailboxUpdateInputSerializer,
    MailboxUserSerializer,
)

MAILBOX_NOT_FOUND = (404, "mailbox_not_found", "Unknown or malformed id, or another account's mailbox.")
MAILBOX_EXISTS = (409, "mailbox_exists", "The account already has a mailbox with this sending address.")
MAILBOX_IN_USE = (409, "mailbox_in_use", "Campaigns or journeys send through it (`details.campaign_ids`).")
NOT_CONFIGURED = (422, "oauth_not_configured", "This server has no OAuth2 client for the provider.")
NOT_OAUTH2 = (422, "mailbox_not_oauth2", "The mailbox signs in with a password.")
FORECAST_DAYS = 14


def mailbox_view(mailbox) -> dict:
    """The mailbox view's data: settings, usage, reply detection, users and its 14-day forecast."""
    return {
        **MailboxSerializer(mailbox).data,
        **mailbox_usage(mailbox=mailbox),
        **mailbox_imap_status(mailbox),
        "used_by": MailboxUserSerializer(selectors.mailbox_users(mailbox=mailbox), many=True).data,
        "forecast": mailbox_forecast(mailbox=mailbox, days=FORECAST_DAYS),
    }


@extend_schema_view(
    list=extend_schema(
        summary="List mailboxes",
        description="The account's sender identities, oldest first; each is shared by every campaign and journey "
        "that sends through it.",
        responses={200: MailboxSerializer(many=True), **error_responses(VALIDATION_FAILED)},
    ),
    retrieve=extend_schema(
        summary="Show a mailbox",
        description="Its settings (never a password or token), sends today against its daily limit, bounce rate "
        "over every campaign, why it is disabled, reply detection's state, the campaigns and journeys using it, "
        f"and its {FORECAST_DAYS}-day forecast.",
        responses={200: MailboxDetailSerializer, **error_responses(MAILBOX_NOT_FOUND)},
    ),
    create=extend_schema(
        summary="Create a mailbox",
        description="A password mailbox (SMTP, optionally IMAP for reply detection), or an `oauth2` one for "
        "Google or Microsoft, which is not ready until connected (`POST /api/mailboxes/{id}/oauth/start`).",
        request=MailboxCreateInputSerializer,
        responses={
            201: MailboxDetailSerializer,
            **error_responses(VALIDATION_FAILED, MALFORMED_JSON, MAILBOX_EXISTS, NOT_CONFIGURED),
        },
    ),
    partial_update=extend_schema(
        summary="Update a mailbox",
        description="For every campaign and journey using it. A password changes only when given.",
        request=MailboxUpdateInputSerializer,
        responses={
            200: MailboxDetailSerializer,
            **error_responses(MAILBOX_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON, MAILBOX_EXISTS),
        },
    ),
    destroy=extend_schema(
        summary="Delete a mailbox",
        description="Only a mailbox no campaign or journey uses.",
        responses={204: None, **error_responses(MAILBOX_NOT_FOUND, MAILBOX_IN_USE)},
    ),
)
class MailboxViewSet(mixins.ListModelMixin, AccountScopedViewSet):
    serializer_class = MailboxSerializer
    not_found_code = "mailbox_not_found"
    not_found_message = "No mailbox with this id."
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.mailbox_list(account=self.request.user)

    def retrieve(self, request, pk=None):
        return Response(mailbox_view(self.get_object()))

    def create(self, request):
        data = MailboxCreateInputSerializer.validate_input(request.data)
        mailbox = services.mailbox_create(account=request.user, **data)
        return Response(mailbox_view(self.get_queryset().get(pk=mailbox.pk)), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        mailbox = self.get_object()
        data = MailboxUpdateInputSerializer.validate_input(request.data)
        services.mailbox_update(mailbox=mailbox, data=data)
        return Response(mailbox_view(self.get_queryset().get(pk=mailbox.pk)))

    def destroy(self, request, pk=None):
        services.mailbox_delete(mailbox=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Re-enable a mailbox",
        description="Clears `disabled_at` and the reason: the mailbox is back in rotation for every campaign and "
        "journey using it. No-op when it is enabled.",
        request=None,
        responses={200: MailboxDetailSerializer, **error_responses(MAILBOX_NOT_FOUND)},
    )
    @action(detail=True, methods=["post"])
    def reenable(self, request, pk=None):
        mailbox = services.mailbox_reenable(mailbox=self.get_object())
        return Response(mailbox_view(self.get_queryset().get(pk=mailbox.pk)))

    @extend_schema(
        summary="Start connecting an OAuth2 mailbox",
        description="Answers the provider's authorization URL (authorization-code flow with PKCE). Open it in a "
        "browser as the mailbox's owner; the provider sends the browser back to `redirect_uri`, which stores the "
        "grant and makes the mailbox ready (and, after a revoked grant, enables it again). The URL is good for 30 "
        "minutes, and only the one started last completes.",
        request=None,
        responses={
            200: MailboxOAuthStartSerializer,
            **error_responses(MAILBOX_NOT_FOUND, NOT_OAUTH2, NOT_CONFIGURED),
        },
    )
    @action(detail=True, methods=["post"], url_path="oauth/start")
    def oauth_start(self, request, pk=None):
        url = services.mailbox_oauth_start(mailbox=self.get_object())
        return Response({"authorization_url": url, "redirect_uri": services.oauth_redirect_uri()})
