import pytest
from django.db import connection
from standardwebhooks import Webhook

from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.services import webhook_event_record

from .conftest import Answer
from .factories import WebhookEndpointFactory
from .helpers import deliver_due

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/outreach"


def _create(api, **body):
    return api.post("/api/webhook_endpoints", {"url": URL, **body}, format="json")


def test_create_answers_201_with_the_secret_once_and_never_again(api):
    response = _create(api, description="CRM", events=["enrollment.sent", "enrollment.replied"])
    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) >= 6 + 32
    assert (
        body["url"] == URL and body["enabled"] is True and body["events"] == ["enrollment.sent", "enrollment.replied"]
    )

    shown = [api.get(f"/api/webhook_endpoints/{body['id']}").json(), api.get("/api/webhook_endpoints").json()[0]]
    shown.append(api.patch(f"/api/webhook_endpoints/{body['id']}", {"description": "x"}, format="json").json())
    for data in shown:
        assert "secret" not in data
        assert body["secret"] not in str(data)


def test_the_secret_is_encrypted_at_rest(api):
    body = _create(api).json()
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhookendpoint WHERE id = %s", [body["id"]])
        (stored,) = cursor.fetchone()
    assert body["secret"] not in stored and not stored.startswith("whsec_")
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == body["secret"]


def test_rotate_secret_answers_a_new_secret_once(api):
    created = _create(api).json()
    response = api.post(f"/api/webhook_endpoints/{created['id']}/rotate_secret")
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["secret_rotating_until"] is not None
    assert "secret" not in api.get(f"/api/webhook_endpoints/{created['id']}").json()


def test_update_and_delete(api):
    created = _create(api).json()
    response = api.patch(
        f"/api/webhook_endpoints/{created['id']}/",
        {"url": "https://other.example.com/h", "events": ["campaign.completed"], "enabled": False},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["url"] == "https://other.example.com/h" and body["events"] == ["campaign.completed"]
    assert body["enabled"] is False and body["disabled_reason"] == "Disabled through the API."
    body = api.patch(f"/api/webhook_endpoints/{created['id']}", {"enabled": True}, format="json").json()
    assert body["enabled"] is True and body["disabled_reason"] == ""

    assert api.delete(f"/api/webhook_endpoints/{created['id']}").status_code == 204
    assert api.get(f"/api/webhook_endpoints/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "http://hooks.example.com/"}, "webhook_url_scheme_not_allowed"),
        ({"url": "https://192.168.0.10/"}, "webhook_url_private_address"),
        ({"url": "https://0x7f000001/"}, "webhook_url_invalid"),
        ({"url": URL, "events": ["enrollment.exploded"]}, "webhook_event_type_unknown"),
        ({"url": URL, "events": ["webhook.test"]}, "webhook_event_type_unknown"),
        ({"url": URL, "secret": "whsec_mine"}, "validation_failed"),
        ({}, "validation_failed"),
    ],
)
def test_bad_input_is_422_and_creates_nothing(api, body, code):
    response = api.post("/api/webhook_endpoints", body, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert not WebhookEndpoint.objects.exists()


def test_a_bad_url_in_an_update_is_422_and_changes_nothing(api):
    created = _create(api).json()
    response = api.patch(f"/api/webhook_endpoints/{created['id']}", {"url": "https://localhost/"}, format="json")
    assert response.status_code == 422 and response.json()["error"]["code"] == "webhook_url_private_address"
    assert WebhookEndpoint.objects.get().url == URL


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/rotate_secret"),
        ("post", "/test"),
        ("get", "/deliveries"),
    ],
)
def test_another_accounts_endpoint_is_a_404(api, outsider, method, suffix):
    theirs = WebhookEndpointFactory(account=outsider)
    for endpoint_id in (theirs.id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        response = getattr(api, method)(f"/api/webhook_endpoints/{endpoint_id}{suffix}", {}, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "webhook_endpoint_not_found"
    assert WebhookEndpoint.objects.filter(pk=theirs.pk, enabled=True).exists()


def test_another_accounts_delivery_cannot_be_redelivered(api, outsider):
    WebhookEndpointFactory(account=outsider)
    webhook_event_record(account=outsider, type="enrollment.sent", data={})
    delivery = WebhookDelivery.objects.get()
    for delivery_id in (delivery.id, "nope"):
        response = api.post(f"/api/webhook_endpoints/deliveries/{delivery_id}/redeliver")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "webhook_delivery_not_found"


def test_the_test_action_sends_webhook_test_to_that_endpoint_only(api, owner, receiver):
    created = _create(api, events=["enrollment.sent"]).json()
    WebhookEndpoint.objects.filter(pk=created["id"]).update(url=receiver.url)
    WebhookEndpointFactory(account=owner, url=receiver.url + "?other")  # subscribed to everything

    response = api.post(f"/api/webhook_endpoints/{created['id']}/test")
    assert response.status_code == 202
    assert response.json()["event_type"] == "webhook.test" and response.json()["status"] == "pending"
    deliver_due()

    (request,) = receiver.requests
    assert request.path == "/hook"
    payload = Webhook(created["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test" and payload["data"]["endpoint_id"] == created["id"]


def test_deliveries_list_shows_attempts_and_redeliver_sends_again(api, owner, receiver):
    endpoint = WebhookEndpointFactory(account=owner, url=receiver.url)
    receiver.script(Answer(500, body=b"down for maintenance"))
    event = webhook_event_record(account=owner, type="enrollment.opened", data={"id": "e"})
    deliver_due()

    (row,) = api.get(f"/api/webhook_endpoints/{endpoint.id}/deliveries").json()
    assert row["event_id"] == str(event.id) and row["event_type"] == "enrollment.opened"
    assert row["status"] == "pending" and row["attempts"] == 1 and row["next_attempt_at"]
    assert row["last_status_code"] == 500 and "down for maintenance" in row["last_error"]
    assert row["recent_attempts"][0]["status_code"] == 500 and row["recent_attempts"][0]["duration_ms"] >= 0
    assert row["payload"]["id"] == str(event.id) and row["payload"]["data"] == {"id": "e"}

    response = api.post(f"/api/webhook_endpoints/deliveries/{row['id']}/redeliver")
    assert response.status_code == 202 and response.json()["attempts"] == 0
    deliver_due()
    assert len(receiver.requests) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {str(event.id)}
    assert api.get(f"/api/webhook_endpoints/{endpoint.id}/deliveries?status=succeeded").json()[0]["id"] == row["id"]
    assert api.get(f"/api/webhook_endpoints/{endpoint.id}/deliveries?status=failed").json() == []
    bad = api.get(f"/api/webhook_endpoints/{endpoint.id}/deliveries?status=exploded")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"


def test_redelivering_to_a_disabled_endpoint_is_a_409(api, owner):
    endpoint = WebhookEndpointFactory(account=owner)
    webhook_event_record(account=owner, type="enrollment.sent", data={})
    api.patch(f"/api/webhook_endpoints/{endpoint.id}", {"enabled": False}, format="json")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "cancelled"
    response = api.post(f"/api/webhook_endpoints/deliveries/{delivery.id}/redeliver")
    assert response.status_code == 409 and response.json()["error"]["code"] == "webhook_endpoint_disabled"
    response = api.post(f"/api/webhook_endpoints/{endpoint.id}/test")
    assert response.status_code == 409


def test_endpoint_list_is_keyset_paginated_in_a_fixed_number_of_queries(api, owner, django_assert_max_num_queries):
    for _ in range(30):
        WebhookEndpointFactory(account=owner)
    with django_assert_max_num_queries(3):  # key lookup, key touch, page
        response = api.get("/api/webhook_endpoints?limit=20")
    assert len(response.json()) == 20 and 'rel="next"' in response["Link"]
    next_url = response["Link"].split(">")[0].lstrip("<")
    assert len(api.get(next_url).json()) == 10


def test_deliveries_list_costs_a_fixed_number_of_queries(api, owner, receiver, django_assert_max_num_queries):
    endpoint = WebhookEndpointFactory(account=owner, url=receiver.url)
    for _ in range(25):
        webhook_event_record(account=owner, type="enrollment.sent", data={})
    deliver_due()
    with django_assert_max_num_queries(5):  # key, touch, endpoint, page, attempts
        response = api.get(f"/api/webhook_endpoints/{endpoint.id}/deliveries?limit=20")
    assert len(response.json()) == 20


def test_event_types_lists_every_type_with_its_documented_payload(api):
    rows = api.get("/api/webhook_event_types").json()
    assert [r["type"] for r in rows] == list(EVENT_TYPES)
    schema = api.get("/api/schema/?format=json").json()
    for row in rows:
        component = row["payload_schema"].rsplit("/", 1)[1]
        assert "data" in schema["components"]["schemas"][component]["properties"]


def test_only_the_caller_sees_its_endpoints(api, outsider):
    WebhookEndpointFactory(account=outsider)
    assert api.get("/api/webhook_endpoints").json() == []
    assert not WebhookEvent.objects.exists()


def test_disabling_through_the_api_records_webhook_endpoint_disabled(api, owner):
    endpoint = WebhookEndpointFactory(account=owner)
    api.patch(f"/api/webhook_endpoints/{endpoint.id}", {"enabled": False}, format="json")
    api.patch(f"/api/webhook_endpoints/{endpoint.id}", {"enabled": False}, format="json")  # already disabled
    (event,) = WebhookEvent.objects.filter(type="webhook_endpoint.disabled")
    assert event.data["id"] == str(endpoint.id) and event.data["disabled_reason"] == "Disabled through the API."
