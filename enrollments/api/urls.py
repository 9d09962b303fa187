from campaigns.api.actions import CAMPAIGN_PATH
from core.routers import action_routes

from .views import CampaignEnrollmentViewSet

urlpatterns = action_routes(
    CampaignEnrollmentViewSet,
    CAMPAIGN_PATH,
    [
        ("enroll", "post", "enroll", "campaign-enroll"),
        ("enroll_contact", "post", "enroll_contact", "campaign-enroll-contact"),
        ("enrollments", "get", "enrollments", "campaign-enrollments"),
        ("replies", "get", "replies", "campaign-replies"),
        ("skips", "get", "skips", "campaign-skips"),
    ],
)
