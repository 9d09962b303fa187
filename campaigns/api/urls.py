from core.routers import OptionalSlashRouter

from .views import CampaignViewSet, OutreachViewSet

router = OptionalSlashRouter()
router.register("outreaches", OutreachViewSet, basename="outreach")
router.register("campaigns", CampaignViewSet, basename="campaign")

urlpatterns = router.urls
