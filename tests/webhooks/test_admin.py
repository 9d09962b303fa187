import pytest
from django.utils import timezone

from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_disable, webhook_event_record

from .factories import WebhookEndpointFactory

pytestmark = pytest.mark.django_db


def test_endpoint_pages_show_the_disabled_reason_and_never_the_secret(admin_client, owner):
    endpoint = WebhookEndpointFactory(account=owner)
    endpoint.previous_secret = "whsec_b2xkIHNlY3JldCBvbGQgc2VjcmV0IG9sZCBzZWNyZXQ="
    endpoint.save()
    webhook_endpoint_disable(endpoint=endpoint, reason="The endpoint answered 410 Gone.")

    listing = admin_client.get("/admin/webhooks/webhookendpoint/?enabled__exact=0").content.decode()
    assert "The endpoint answered 410 Gone." in listing
    page = admin_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret not in page and endpoint.previous_secret not in page
    assert endpoint.secret[6:20] not in page and "whsec_" not in page

    events = admin_client.get("/admin/webhooks/webhookevent/?type=webhook_endpoint.disabled").content.decode()
    assert "webhook_endpoint.disabled" in events


def test_deliveries_filter_by_status_and_redeliver_from_the_admin(admin_client, owner):
    WebhookEndpointFactory(account=owner)
    webhook_event_record(account=owner, type="enrollment.sent", data={})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None, attempts=10)

    failed = admin_client.get("/admin/webhooks/webhookdelivery/?status__exact=failed").content.decode()
    assert str(delivery.pk) in failed
    pending = admin_client.get("/admin/webhooks/webhookdelivery/?status__exact=pending").content.decode()
    assert str(delivery.pk) not in pending
    assert admin_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").status_code == 200

    response = admin_client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "redeliver", "_selected_action": [str(delivery.pk)]}
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0 and delivery.next_attempt_at <= timezone.now()
