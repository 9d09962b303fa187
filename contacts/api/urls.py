from core.routers import OptionalSlashRouter

from .views import ContactImportViewSet, ContactViewSet

router = OptionalSlashRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("contact_imports", ContactImportViewSet, basename="contact-import")

urlpatterns = router.urls
