"""Campaign actions of the sending engine: /api/campaigns/{campaign_id}/…

dispatch, send_forecast, pause, resume, test_send, and the operator's view
of sends whose outcome is unknown (list, release). Each handler validates,
calls one service or selector of `mailing`, renders.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from campaigns.api.actions import CampaignActionViewSet
from core.schema import MALFORMED_JSON, VALIDATION_FAILED, error_responses
from mailing import dispatch, scheduling, selectors, trial_sends
from mailing.models import ScheduledSend

from .serializers import (
    CampaignStatusSerializer,
    DispatchInputSerializer,
    DispatchResultSerializer,
    ForecastBucketSerializer,
    ForecastInputSerializer,
    ReleaseInputSerializer,
    ReleaseResultSerializer,
    TestSendInputSerializer,
    TestSendResultSerializer,
    UnknownSendSerializer,
)

CAMPAIGN_NOT_FOUND = (404, "campaign_not_found", "Unknown campaign or another account's.")
PLAN_LIMIT = (402, "plan_limit_reached", "The account reached its monthly_limit this month.")
NO_PENDING = (422, "no_pending_enrollments", "Nothing pending to dispatch (in that batch).")
NOT_ACTIVE = (422, "campaign_not_active", "The campaign is paused (dispatch) or not active (pause).")
NOT_PAUSED = (422, "campaign_not_paused", "resume on a campaign that is not paused.")
NO_CAPACITY = (422, "no_capacity", "Every credential is disabled or at its daily limit of first messages today.")
INCOMPLETE = (
    422,
    "campaign_incomplete",
    "The campaign has no SMTP credential, no sequence step, or a credential that is not ready (named).",
)
SMTP_UNAVAILABLE = (502, "smtp_unavailable", "The SMTP server could not be reached or refused the login.")


class CampaignSendingViewSet(CampaignActionViewSet):
    """The sending workflow of one campaign."""

    queryset = ScheduledSend.objects.none()  # for the schema; every handler scopes its own reads

    @extend_schema(
        summary="Dispatch a batch",
        description=(
            "Schedules every step for the pending enrollments of `batch_number` (omitted: the lowest batch with "
            "pending enrollments). Step 1 goes out from now with random gaps of `min_wait_seconds`.."
            "`max_wait_seconds` between sends; credentials take turns, each at most its `daily_limit` of first "
            "messages per day, and what does not fit today rolls to the following days (`by_day`). Step N follows "
            "step 1 by the cumulative `delay_minutes`. With `verify_email_mx`, contacts whose domain has no MX "
            "are bounced (`mx_invalid`) instead. The campaign becomes active."
        ),
        request=DispatchInputSerializer,
        responses={
            200: DispatchResultSerializer,
            **error_responses(
                CAMPAIGN_NOT_FOUND,
                PLAN_LIMIT,
                NO_PENDING,
                NOT_ACTIVE,
                NO_CAPACITY,
                INCOMPLETE,
                VALIDATION_FAILED,
                MALFORMED_JSON,
            ),
        },
    )
    def dispatch_batch(self, request, campaign_id=None):
        campaign = self.campaign()
        data = DispatchInputSerializer.validate_input(request.data or {})
        result = dispatch.campaign_dispatch(campaign=campaign, batch_number=data.get("batch_number"))
        return Response(DispatchResultSerializer(result).data)

    @extend_schema(
        summary="Send forecast",
        description="Exactly `days` daily buckets from today (the account's time zone) of the sends still to go.",
        parameters=[ForecastInputSerializer],
        responses={200: ForecastBucketSerializer(many=True), **error_responses(CAMPAIGN_NOT_FOUND, VALIDATION_FAILED)},
    )
    def send_forecast(self, request, campaign_id=None):
        campaign = self.campaign()
        data = ForecastInputSerializer.validate_input(request.query_params.dict())
        buckets = selectors.send_forecast(campaign=campaign, days=data["days"])
        return Response(ForecastBucketSerializer(buckets, many=True).data)

    @extend_schema(
        summary="Pause",
        description="Active → paused. Due sends wait; nothing is lost.",
        request=None,
        responses={200: CampaignStatusSerializer, **error_responses(CAMPAIGN_NOT_FOUND, NOT_ACTIVE)},
    )
    def pause(self, request, campaign_id=None):
        campaign = scheduling.campaign_pause(campaign=self.campaign())
        return Response(CampaignStatusSerializer(campaign).data)

    @extend_schema(
        summary="Resume",
        description=(
            "Paused → active. Sends that came due during the pause go out from now with fresh jitter; the "
            "later steps move with them (and everything else by the time paused), keeping the gaps between steps."
        ),
        request=None,
        responses={200: CampaignStatusSerializer, **error_responses(CAMPAIGN_NOT_FOUND, NOT_PAUSED)},
    )
    def resume(self, request, campaign_id=None):
        campaign = scheduling.campaign_resume(campaign=self.campaign())
        return Response(CampaignStatusSerializer(campaign).data)

    @extend_schema(
        summary="Test send",
        description=(
            "Sends every step now to each address (1..10) through the first enabled credential, merge tags "
            "filled from the first address (its contact when there is one). No enrollment, no limit counted."
        ),
        request=TestSendInputSerializer,
        responses={
            200: TestSendResultSerializer,
            **error_responses(
                CAMPAIGN_NOT_FOUND, INCOMPLETE, NO_CAPACITY, SMTP_UNAVAILABLE, VALIDATION_FAILED, MALFORMED_JSON
            ),
        },
    )
    def test_send(self, request, campaign_id=None):
        campaign = self.campaign()
        data = TestSendInputSerializer.validate_input(request.data)
        result = trial_sends.campaign_test_send(campaign=campaign, emails=data["emails"])
        return Response(TestSendResultSerializer(result).data)

    @extend_schema(
        summary="Sends with an unknown outcome",
        description=(
            "Sends a worker was handing to the server when it died: they may or may not have been delivered, "
            "so they are never re-sent automatically. Release them to send them again."
        ),
        responses={200: UnknownSendSerializer(many=True), **error_responses(CAMPAIGN_NOT_FOUND, VALIDATION_FAILED)},
    )
    def unknown_sends(self, request, campaign_id=None):
        self.keyset_fields = ("send_at", "id")
        return self.paginated(selectors.unknown_sends(campaign=self.campaign()), UnknownSendSerializer)

    @extend_schema(
        summary="Release sends with an unknown outcome",
        description="Schedules the given `unknown` sends (all of them when `send_ids` is omitted) to go out again now.",
        request=ReleaseInputSerializer,
        responses={
            200: ReleaseResultSerializer,
            **error_responses(CAMPAIGN_NOT_FOUND, VALIDATION_FAILED, MALFORMED_JSON),
        },
    )
    def release_unknown_sends(self, request, campaign_id=None):
        campaign = self.campaign()
        data = ReleaseInputSerializer.validate_input(request.data or {})
        released = scheduling.sends_release_unknown(campaign=campaign, send_ids=data.get("send_ids"))
        return Response(ReleaseResultSerializer({"released": released}).data)
