from django.urls import re_path

from .views import CampaignSendingViewSet

CAMPAIGN = r"^campaigns/(?P<campaign_id>[^/]+)"


def _route(suffix: str, method: str, action: str, name: str):
    view = CampaignSendingViewSet.as_view({method: action})
    return re_path(rf"{CAMPAIGN}/{suffix}/?$", view, name=name)


urlpatterns = [
    _route("dispatch", "post", "dispatch_batch", "campaign-dispatch"),
    _route("send_forecast", "get", "send_forecast", "campaign-send-forecast"),
    _route("pause", "post", "pause", "campaign-pause"),
    _route("resume", "post", "resume", "campaign-resume"),
    _route("test_send", "post", "test_send", "campaign-test-send"),
    _route("unknown_sends", "get", "unknown_sends", "campaign-unknown-sends"),
    _route("unknown_sends/release", "post", "release_unknown_sends", "campaign-unknown-sends-release"),
]
