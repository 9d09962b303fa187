"""The inbound models left the mailing app (issue 12): their rows, tables and content types came along."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from inbound.models import ImapSyncState, InboundMessage, ProviderEvent, TrackingEvent

from .factories import sent_enrollment

BEFORE_THE_MOVE = [("mailing", "0005_send_outcome_pending_and_message_id_index"), ("inbound", None)]


def _migrate(targets):
    """Migrate the test database to `targets`; the models as they stand there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


@pytest.mark.django_db(transaction=True)
def test_moving_the_models_to_inbound_keeps_every_row_and_content_type(request, owner, campaign, credential):
    enrollment, sends = sent_enrollment(campaign, credential)
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    request.addfinalizer(lambda: _migrate(latest))  # whatever fails, the next test finds the schema it expects
    old = _migrate(BEFORE_THE_MOVE)
    now = timezone.now()
    old.get_model("mailing", "TrackingEvent").objects.create(
        kind="open", scheduled_send_id=sends[0].pk, enrollment_id=enrollment.pk, created_at=now
    )
    old.get_model("mailing", "InboundMessage").objects.create(
        message_id="<reply@example.org>",
        smtp_credential_id=credential.pk,
        enrollment_id=enrollment.pk,
        kind="reply",
        matched_by="headers",
        received_at=now,
    )
    old.get_model("mailing", "ProviderEvent").objects.create(
        account_id=owner.pk, idempotency_key="k1", event_type="bounced", raw={"event": "bounce"}
    )
    old.get_model("mailing", "ImapSyncState").objects.create(smtp_credential_id=credential.pk, last_uid=42)
    ContentType.objects.clear_cache()
    old_type = ContentType.objects.get(app_label="mailing", model="trackingevent")  # moved back on the way down

    _migrate(latest)

    ContentType.objects.clear_cache()
    assert TrackingEvent.objects.get().created_at == now
    assert InboundMessage.objects.get().message_id == "<reply@example.org>"
    assert ProviderEvent.objects.get().idempotency_key == "k1"
    assert ImapSyncState.objects.get().last_uid == 42
    # and, read per mailbox since, both belong to the credential's mailbox
    credential.refresh_from_db()
    assert InboundMessage.objects.get().mailbox_id == credential.mailbox_id
    assert ImapSyncState.objects.get().mailbox_id == credential.mailbox_id
    tables = set(connection.introspection.table_names())
    assert {
        "inbound_trackingevent",
        "inbound_inboundmessage",
        "inbound_providerevent",
        "inbound_imapsyncstate",
    } <= tables
    assert not {"mailing_trackingevent", "mailing_inboundmessage", "mailing_providerevent"} & tables
    assert ContentType.objects.get_for_model(TrackingEvent).pk == old_type.pk
    assert not ContentType.objects.filter(app_label="mailing", model="trackingevent").exists()
    # the moved foreign keys still hold: deleting the enrollment cascades as before
    enrollment.delete()
    assert not TrackingEvent.objects.exists()
    assert InboundMessage.objects.get().enrollment_id is None
