import json
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from standardwebhooks import Webhook

from webhooks.delivery import webhook_deliveries_claim, webhook_deliveries_deliver
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.services import webhook_endpoint_rotate_secret, webhook_event_record

from .conftest import Answer
from .factories import WebhookEndpointFactory
from .helpers import deliver_due, make_due

pytestmark = pytest.mark.django_db

DATA = {"id": "6f1c", "campaign_id": "c", "contact_id": "k", "contact_email": "ann@example.com", "status": "sent"}


def _delivery():
    return WebhookDelivery.objects.select_related("endpoint", "event").get()


def test_a_delivery_is_signed_so_standardwebhooks_verifies_it(owner, receiver):
    endpoint = WebhookEndpointFactory(account=owner, url=receiver.url)
    event = webhook_event_record(account=owner, type="enrollment.sent", data=DATA)

    deliver_due()

    (request,) = receiver.requests
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["id"] == str(event.id) == request.headers["webhook-id"]
    assert payload["type"] == "enrollment.sent"
    assert payload["data"] == DATA
    assert payload["created_at"].endswith("Z")
    assert request.headers["content-type"] == "application/json"
    delivery = _delivery()
    assert delivery.status == "succeeded" and delivery.attempts == 1 and delivery.last_status_code == 200


def test_during_a_rotation_both_secrets_sign_and_either_verifies(owner, receiver):
    endpoint = WebhookEndpointFactory(account=owner, url=receiver.url)
    old_secret = endpoint.secret
    endpoint = webhook_endpoint_rotate_secret(endpoint=endpoint)
    webhook_event_record(account=owner, type="enrollment.opened", data=DATA)

    deliver_due()

    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old_secret).verify(request.body, request.headers)["type"] == "enrollment.opened"
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["type"] == "enrollment.opened"


def test_after_24_hours_only_the_new_secret_signs(owner, receiver):
    endpoint = WebhookEndpointFactory(account=owner, url=receiver.url)
    webhook_endpoint_rotate_secret(endpoint=endpoint, now=timezone.now() - timedelta(hours=25))
    webhook_event_record(account=owner, type="enrollment.opened", data=DATA)

    deliver_due()

    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 1


def test_three_500s_then_a_200_reuse_the_webhook_id_and_succeed_once(owner, receiver):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    receiver.script(Answer(500, body=b"boom"), Answer(500), Answer(500), Answer(200))
    event = webhook_event_record(account=owner, type="enrollment.replied", data=DATA)

    expected_waits = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
    for wait in expected_waits:
        before = timezone.now()
        deliver_due()
        delivery = _delivery()
        assert delivery.status == "pending"
        assert delivery.last_status_code == 500 and "HTTP 500" in delivery.last_error
        assert wait * 0.9 <= delivery.next_attempt_at - before <= wait * 1.1 + timedelta(seconds=2)
        deliver_due()  # not due yet: nothing is sent
        make_due()
    deliver_due()
    deliver_due()

    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(event.id)] * 4
    delivery = _delivery()
    assert delivery.status == "succeeded" and delivery.attempts == 4
    assert [a.succeeded for a in delivery.attempt_log.order_by("attempted_at")] == [False, False, False, True]
    assert delivery.endpoint.failing_since is None


def test_a_delivery_gives_up_after_the_tenth_attempt(owner, receiver):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    receiver.script(*[Answer(502)] * 10)
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    for _ in range(10):
        make_due()
        deliver_due()
    delivery = _delivery()
    assert delivery.status == "failed" and delivery.attempts == 10 and delivery.next_attempt_at is None
    assert len(receiver.requests) == 10


def test_a_claimed_delivery_whose_worker_died_is_delivered_after_its_lease(owner, receiver):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    event = webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    token, ids = webhook_deliveries_claim()  # ... and the worker dies here
    assert ids and deliver_due() == 0 and not receiver.requests  # leased: nobody else takes it

    lease_end = _delivery().next_attempt_at
    token2, ids2 = webhook_deliveries_claim(now=lease_end + timedelta(seconds=1))
    assert ids2 == ids
    assert webhook_deliveries_deliver(token=token, ids=ids) == 0  # the dead claim's token is void
    assert webhook_deliveries_deliver(token=token2, ids=ids2) == 1
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(event.id)]
    assert _delivery().status == "succeeded"


def test_410_gone_disables_the_endpoint_and_tells_the_other_endpoints(owner, receiver):
    gone = WebhookEndpointFactory(account=owner, url=receiver.url + "?gone", events=["enrollment.sent"])
    other = WebhookEndpointFactory(account=owner, url=receiver.url + "?other", events=["webhook_endpoint.disabled"])
    receiver.script(Answer(410))
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    deliver_due()

    gone.refresh_from_db()
    assert not gone.enabled and "410" in gone.disabled_reason and gone.disabled_at
    statuses = sorted(gone.deliveries.values_list("status", flat=True))
    assert statuses == ["cancelled", "failed"]
    notice = WebhookEvent.objects.get(type="webhook_endpoint.disabled")
    assert notice.data["id"] == str(gone.id) and "410" in notice.data["disabled_reason"]
    deliver_due()
    request = receiver.requests[-1]
    assert request.path == "/hook?other"
    assert Webhook(other.secret).verify(request.body, request.headers)["type"] == "webhook_endpoint.disabled"


def test_an_endpoint_failing_every_delivery_for_five_days_is_disabled(owner, receiver):
    endpoint = WebhookEndpointFactory(account=owner, url=receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=5, hours=1))
    receiver.script(Answer(500))
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    deliver_due()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "Every delivery has failed since" in endpoint.disabled_reason
    assert WebhookEvent.objects.filter(type="webhook_endpoint.disabled").count() == 1


def test_a_failure_starts_the_streak_and_a_success_ends_it(owner, receiver):
    endpoint = WebhookEndpointFactory(account=owner, url=receiver.url)
    receiver.script(Answer(500))
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    deliver_due()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.enabled
    make_due()
    deliver_due()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


@override_settings(WEBHOOKS_DELIVERY_TIMEOUT_SECONDS=1)
def test_a_slow_receiver_is_cut_off_at_the_timeout(owner, receiver):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    receiver.script(Answer(200, delay=3))
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    started = time.monotonic()
    deliver_due()
    assert time.monotonic() - started < 2
    delivery = _delivery()
    assert delivery.status == "pending" and "Timed out after 1 s" in delivery.last_error
    assert delivery.last_status_code is None and 900 <= delivery.last_duration_ms < 2000


@override_settings(WEBHOOKS_DELIVERY_TIMEOUT_SECONDS=1)
def test_a_receiver_trickling_its_answer_is_cut_off_at_the_timeout_too(owner, receiver):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    receiver.script(Answer(trickle=True))
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    started = time.monotonic()
    deliver_due()
    assert time.monotonic() - started < 2
    assert "Timed out" in _delivery().last_error


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_on_429_and_503(owner, receiver, status):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    receiver.script(Answer(status, headers={"Retry-After": "120"}))
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    before = timezone.now()
    deliver_due()
    wait = _delivery().next_attempt_at - before
    assert timedelta(seconds=119) <= wait <= timedelta(seconds=125)


def test_a_redirect_is_a_failure_and_is_not_followed(owner, receiver, canary):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    receiver.script(Answer(302, headers={"Location": f"http://127.0.0.1:{canary.port}/internal"}))
    webhook_event_record(account=owner, type="enrollment.sent", data=DATA)
    deliver_due()
    delivery = _delivery()
    assert delivery.status == "pending" and delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_error
    assert canary.unreached() and len(receiver.requests) == 1


def test_the_body_is_the_documented_payload_shape(owner, receiver):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    webhook_event_record(account=owner, type="campaign.completed", data={"id": "x", "stats": {"sent": 3}})
    deliver_due()
    body = json.loads(receiver.requests[0].body)
    assert set(body) == {"id", "type", "created_at", "data"}
    assert body["data"] == {"id": "x", "stats": {"sent": 3}}
