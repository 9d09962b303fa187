"""Reply detection reads each mailbox once, whatever the number of campaigns using it (issue 15).

- `ImapSyncState` is keyed by the mailbox instead of the credential. Where
  several credentials became one mailbox (`campaigns/0004`), the state that
  read furthest (highest `last_uid`) is kept: the others read the same INBOX
  and their Message-IDs are stored already, so re-reading nothing is lost.
- `InboundMessage` records the mailbox it was read from, and is unique per
  (mailbox, Message-ID) instead of per credential (a message whose credential
  was deleted keeps no mailbox, as it kept no credential); a message two merged
  credentials both stored is kept once (the earliest row).
"""

import django.db.models.deletion
from django.db import migrations, models

SYNC_STATE_TO_MAILBOX = """
ALTER TABLE inbound_imapsyncstate ADD COLUMN mailbox_id uuid NULL;
UPDATE inbound_imapsyncstate s SET mailbox_id = c.mailbox_id
  FROM campaigns_smtpcredential c WHERE c.id = s.smtp_credential_id;
DELETE FROM inbound_imapsyncstate s USING inbound_imapsyncstate t
 WHERE s.mailbox_id = t.mailbox_id
   AND (s.last_uid, s.smtp_credential_id::text) < (t.last_uid, t.smtp_credential_id::text);
ALTER TABLE inbound_imapsyncstate DROP COLUMN smtp_credential_id;
ALTER TABLE inbound_imapsyncstate ALTER COLUMN mailbox_id SET NOT NULL;
ALTER TABLE inbound_imapsyncstate ADD CONSTRAINT inbound_imapsyncstate_pkey PRIMARY KEY (mailbox_id);
ALTER TABLE inbound_imapsyncstate ADD CONSTRAINT inbound_imapsyncstate_mailbox_id_fk
  FOREIGN KEY (mailbox_id) REFERENCES mailboxes_mailbox (id) DEFERRABLE INITIALLY DEFERRED;
"""

SYNC_STATE_TO_CREDENTIAL = """
ALTER TABLE inbound_imapsyncstate ADD COLUMN smtp_credential_id uuid NULL;
UPDATE inbound_imapsyncstate s SET smtp_credential_id = (
  SELECT c.id FROM campaigns_smtpcredential c WHERE c.mailbox_id = s.mailbox_id ORDER BY c.created_at, c.id LIMIT 1);
DELETE FROM inbound_imapsyncstate WHERE smtp_credential_id IS NULL;
ALTER TABLE inbound_imapsyncstate DROP COLUMN mailbox_id;
ALTER TABLE inbound_imapsyncstate ALTER COLUMN smtp_credential_id SET NOT NULL;
ALTER TABLE inbound_imapsyncstate ADD CONSTRAINT inbound_imapsyncstate_pkey PRIMARY KEY (smtp_credential_id);
ALTER TABLE inbound_imapsyncstate ADD CONSTRAINT inbound_imapsyncstate_smtp_credential_id_fk
  FOREIGN KEY (smtp_credential_id) REFERENCES campaigns_smtpcredential (id) DEFERRABLE INITIALLY DEFERRED;
"""

MESSAGES_TO_MAILBOX = """
UPDATE inbound_inboundmessage m SET mailbox_id = c.mailbox_id
  FROM campaigns_smtpcredential c WHERE c.id = m.smtp_credential_id;
DELETE FROM inbound_inboundmessage m USING inbound_inboundmessage n
 WHERE m.mailbox_id = n.mailbox_id AND m.message_id = n.message_id AND m.id > n.id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("inbound", "0001_initial"),
        ("campaigns", "0004_credentials_use_mailboxes"),
        ("mailboxes", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(SYNC_STATE_TO_MAILBOX, SYNC_STATE_TO_CREDENTIAL)],
            state_operations=[
                migrations.RemoveField(model_name="imapsyncstate", name="smtp_credential"),
                migrations.AddField(
                    model_name="imapsyncstate",
                    name="mailbox",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="imap_sync_state",
                        serialize=False,
                        to="mailboxes.mailbox",
                    ),
                    preserve_default=False,
                ),
            ],
        ),
        migrations.RemoveConstraint(model_name="inboundmessage", name="inbound_unique_per_mailbox"),
        migrations.AddField(
            model_name="inboundmessage",
            name="mailbox",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="inbound_messages",
                to="mailboxes.mailbox",
            ),
        ),
        migrations.RunSQL(MESSAGES_TO_MAILBOX, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="inboundmessage",
            constraint=models.UniqueConstraint(fields=("mailbox", "message_id"), name="inbound_unique_per_mailbox"),
        ),
    ]
