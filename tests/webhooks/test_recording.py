import pytest
from django.db import transaction

from webhooks.models import WebhookDelivery, WebhookEvent
from webhooks.services import webhook_event_record

from .factories import WebhookEndpointFactory
from .helpers import deliver_due

pytestmark = pytest.mark.django_db


def _data():
    return {"id": "e1", "campaign_id": "c1", "contact_email": "ann@example.com", "status": "sent"}


def test_an_event_gets_one_delivery_per_subscribed_endpoint_and_none_for_the_others(owner, outsider):
    everything = WebhookEndpointFactory(account=owner, events=[])
    sent_only = WebhookEndpointFactory(account=owner, events=["enrollment.sent"])
    WebhookEndpointFactory(account=owner, events=["enrollment.replied"])
    WebhookEndpointFactory(account=owner, enabled=False, disabled_at="2024-01-01T00:00:00Z")
    WebhookEndpointFactory(account=outsider, events=[])

    event = webhook_event_record(account=owner, type="enrollment.sent", data=_data())

    deliveries = WebhookDelivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {everything.id, sent_only.id}
    assert all(d.status == "pending" and d.next_attempt_at is not None for d in deliveries)


def test_recording_costs_the_same_few_queries_whatever_the_number_of_endpoints(owner, django_assert_num_queries):
    for _ in range(20):
        WebhookEndpointFactory(account=owner)
    with django_assert_num_queries(5):  # savepoint, endpoints, event, deliveries, release
        webhook_event_record(account=owner, type="enrollment.opened", data=_data())
    assert WebhookDelivery.objects.count() == 20


def test_an_event_recorded_in_a_rolled_back_transaction_leaves_nothing(owner):
    WebhookEndpointFactory(account=owner)
    with pytest.raises(RuntimeError), transaction.atomic():
        webhook_event_record(account=owner, type="enrollment.bounced", data=_data())
        raise RuntimeError("the state change failed")
    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_an_unknown_event_type_is_a_programming_error(owner):
    with pytest.raises(ValueError, match="Unknown webhook event type"):
        webhook_event_record(account=owner, type="enrollment.exploded", data={})


def test_each_transition_is_delivered_exactly_once_to_each_subscribed_endpoint(owner, receiver):
    all_types = WebhookEndpointFactory(account=owner, url=receiver.url + "?all")
    replies = WebhookEndpointFactory(account=owner, url=receiver.url + "?replies", events=["enrollment.replied"])
    types = ["enrollment.sent", "enrollment.opened", "enrollment.replied", "enrollment.bounced"]
    events = [webhook_event_record(account=owner, type=t, data=_data()) for t in types]

    deliver_due()
    deliver_due()  # a second tick finds nothing left to send

    by_path: dict[str, list[str]] = {}
    for request in receiver.requests:
        by_path.setdefault(request.path, []).append(request.headers["webhook-id"])
    assert sorted(by_path["/hook?all"]) == sorted(str(e.id) for e in events)
    assert by_path["/hook?replies"] == [str(events[2].id)]
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 5
    assert all_types.deliveries.count() == 4 and replies.deliveries.count() == 1


def test_the_purge_task_deletes_old_finished_events_and_keeps_pending_ones(owner):
    from datetime import timedelta

    from django.utils import timezone

    from webhooks.tasks import purge_webhook_events_task

    WebhookEndpointFactory(account=owner)
    finished = webhook_event_record(account=owner, type="enrollment.sent", data={})
    pending = webhook_event_record(account=owner, type="enrollment.opened", data={})
    recent = webhook_event_record(account=owner, type="enrollment.replied", data={})
    WebhookDelivery.objects.filter(event=finished).update(status="succeeded", next_attempt_at=None)
    WebhookEvent.objects.filter(pk__in=[finished.pk, pending.pk]).update(created_at=timezone.now() - timedelta(days=40))

    assert purge_webhook_events_task() == 1
    assert set(WebhookEvent.objects.values_list("id", flat=True)) == {pending.id, recent.id}
