"""A worker killed mid-delivery loses nothing: a real process, SIGKILLed while the receiver holds its request."""

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from webhooks.delivery import webhook_deliveries_claim, webhook_deliveries_deliver
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_event_record

from .conftest import Answer
from .factories import WebhookEndpointFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKER = "import django; django.setup(); from webhooks.tasks import deliver_webhooks_task; deliver_webhooks_task()"


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_worker_killed_mid_delivery_loses_nothing(owner, receiver):
    WebhookEndpointFactory(account=owner, url=receiver.url)
    event = webhook_event_record(account=owner, type="enrollment.sent", data={"id": "e"})
    release = threading.Event()
    receiver.script(Answer(200, hold=release))

    env = {**os.environ, "DATABASE_URL": _database_url(), "WEBHOOKS_ALLOW_PRIVATE_URLS": "true"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    worker = subprocess.Popen([sys.executable, "-c", WORKER], env=env, cwd=Path(__file__).resolve().parents[2])
    try:
        assert receiver.arrived.wait(30), "the worker never posted"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        release.set()
        if worker.poll() is None:
            worker.kill()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1  # the attempt counts, its outcome is unknown
    lease_end = delivery.next_attempt_at
    assert lease_end > timezone.now()  # leased: not due again until the lease runs out
    assert webhook_deliveries_claim(now=timezone.now())[1] == []

    token, ids = webhook_deliveries_claim(now=lease_end + timedelta(seconds=1))
    assert webhook_deliveries_deliver(token=token, ids=ids) == 1

    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(event.id)] * 2
