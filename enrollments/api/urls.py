from django.urls import re_path

from .views import CampaignEnrollmentViewSet

CAMPAIGN = r"^campaigns/(?P<campaign_id>[^/]+)"


def _route(suffix: str, method: str, action: str, name: str):
    view = CampaignEnrollmentViewSet.as_view({method: action})
    return re_path(rf"{CAMPAIGN}/{suffix}/?$", view, name=name)


urlpatterns = [
    _route("enroll", "post", "enroll", "campaign-enroll"),
    _route("enroll_contact", "post", "enroll_contact", "campaign-enroll-contact"),
    _route("enrollments", "get", "enrollments", "campaign-enrollments"),
    _route("replies", "get", "replies", "campaign-replies"),
    _route("skips", "get", "skips", "campaign-skips"),
]
