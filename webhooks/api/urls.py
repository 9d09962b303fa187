from django.urls import re_path

from core.routers import OptionalSlashRouter

from .views import WebhookEndpointViewSet, WebhookEventTypeListView

router = OptionalSlashRouter()
router.register("webhook_endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = [
    re_path(r"^webhook_event_types/?$", WebhookEventTypeListView.as_view(), name="webhook-event-types"),
    *router.urls,
]
