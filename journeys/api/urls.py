from django.urls import re_path

from core.routers import OptionalSlashRouter

from .views import CompatJourneyEnrollView, JourneyViewSet

router = OptionalSlashRouter()
router.register("journeys", JourneyViewSet, basename="journey")

urlpatterns = [
    *router.urls,
    # The vendor's path (compat-v1-journeys-enroll.md); a malformed id reaches the view, which answers its 404.
    re_path(
        r"^v1/journeys/(?P<journey_id>[^/]+)/enroll/?$", CompatJourneyEnrollView.as_view(), name="compat-journey-enroll"
    ),
]
