from core.routers import OptionalSlashRouter

from .views import ContactImportViewSet, ContactListViewSet, ContactViewSet

router = OptionalSlashRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("contact_imports", ContactImportViewSet, basename="contact-import")
router.register("lists", ContactListViewSet, basename="contact-list")

urlpatterns = router.urls
