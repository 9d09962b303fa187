"""The inbound-event models leave the mailing app for the inbound app (issue 12), without a row copied.

State only: Django forgets ImapSyncState, InboundMessage, ProviderEvent and
TrackingEvent as `mailing`'s here, and `inbound/0001_initial` declares them as
`inbound`'s and renames their tables (`mailing_*` → `inbound_*`). Nothing
in the database changes in this migration.
"""

from django.db import migrations

MOVED = ("ImapSyncState", "InboundMessage", "ProviderEvent", "TrackingEvent")


class Migration(migrations.Migration):
    dependencies = [
        ("mailing", "0005_send_outcome_pending_and_message_id_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name=name) for name in MOVED],
            database_operations=[],
        ),
    ]
