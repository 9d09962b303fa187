from django.urls import re_path

from campaigns.api.actions import CAMPAIGN_PATH
from core.routers import action_routes

from .compat import CompatEnrollmentDetailView, CompatEnrollmentListView
from .sequences import SequenceEnrollmentListView
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

# The /v1 compat surface (compat.py); a malformed id reaches the view, which answers its 404.
urlpatterns += [
    re_path(r"^v1/enrollments/?$", CompatEnrollmentListView.as_view(), name="compat-v1-enrollments"),
    re_path(
        r"^v1/enrollments/(?P<enrollment_id>[^/]+)/?$",
        CompatEnrollmentDetailView.as_view(),
        name="compat-v1-enrollment",
    ),
]

# The /sequences/v1 compat surface (sequences.py), with and without the trailing slash.
urlpatterns += [
    re_path(
        r"^sequences/v1/enrollments/?$",
        SequenceEnrollmentListView.as_view(),
        name="compat-sequences-v1-enrollments",
    ),
]
