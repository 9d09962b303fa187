from campaigns.api.actions import CAMPAIGN_PATH
from core.routers import action_routes

from .views import CampaignSendingViewSet

urlpatterns = action_routes(
    CampaignSendingViewSet,
    CAMPAIGN_PATH,
    [
        ("dispatch", "post", "dispatch_batch", "campaign-dispatch"),
        ("send_forecast", "get", "send_forecast", "campaign-send-forecast"),
        ("pause", "post", "pause", "campaign-pause"),
        ("resume", "post", "resume", "campaign-resume"),
        ("test_send", "post", "test_send", "campaign-test-send"),
        ("unknown_sends", "get", "unknown_sends", "campaign-unknown-sends"),
        ("unknown_sends/release", "post", "release_unknown_sends", "campaign-unknown-sends-release"),
    ],
)
