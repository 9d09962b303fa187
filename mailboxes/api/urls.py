from core.routers import OptionalSlashRouter

from .views import MailboxViewSet

router = OptionalSlashRouter()
router.register("mailboxes", MailboxViewSet, basename="mailbox")

urlpatterns = router.urls
