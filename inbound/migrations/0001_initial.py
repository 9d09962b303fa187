"""The inbound-event models, moved from the mailing app (issue 12) without copying a row.

1. State only: the four models are declared as `inbound`'s with their old
   tables (`db_table = mailing_*`); `mailing/0006` forgot them on its side.
   Their columns, indexes and constraints are exactly what `mailing/0003` and
   `mailing/0004` built, so nothing is created.
2. `AlterModelTable` renames each table to the inbound app's default name
   (`ALTER TABLE … RENAME`, no rewrite, a brief lock); the rows, the foreign
   keys and the named indexes and constraints follow. Indexes Django named
   after the old table keep those names, which nothing relies on.
3. The content types of the four models move to the `inbound` app label, so
   their permissions and admin log entries follow them instead of being
   orphaned next to fresh ones.

Everything reverses: back to `mailing_*` tables and the `mailing` label.
"""

import django.db.models.deletion
from django.db import migrations, models

import core.ids

MOVED = ("imapsyncstate", "inboundmessage", "providerevent", "trackingevent")


def _relabel(apps, old: str, new: str) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects
    for model in MOVED:
        if not content_types.filter(app_label=new, model=model).exists():
            content_types.filter(app_label=old, model=model).update(app_label=new)


def content_types_to_inbound(apps, schema_editor):
    _relabel(apps, "mailing", "inbound")


def content_types_to_mailing(apps, schema_editor):
    _relabel(apps, "inbound", "mailing")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0002_inbound_webhook"),
        ("campaigns", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("enrollments", "0002_tally_triggers"),
        ("mailing", "0006_inbound_models_move_to_inbound"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="ImapSyncState",
                    fields=[
                        (
                            "smtp_credential",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="imap_sync_state",
                                serialize=False,
                                to="campaigns.smtpcredential",
                            ),
                        ),
                        ("folder", models.CharField(default="INBOX", max_length=255)),
                        ("uidvalidity", models.BigIntegerField(blank=True, null=True)),
                        ("last_uid", models.BigIntegerField(default=0)),
                        ("last_polled_at", models.DateTimeField(blank=True, null=True)),
                        ("last_success_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.TextField(blank=True, default="")),
                        ("last_error_at", models.DateTimeField(blank=True, null=True)),
                        ("consecutive_failures", models.PositiveIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        "verbose_name": "IMAP sync state",
                        "db_table": "mailing_imapsyncstate",
                    },
                ),
                migrations.CreateModel(
                    name="InboundMessage",
                    fields=[
                        (
                            "id",
                            models.UUIDField(default=core.ids.uuid7, editable=False, primary_key=True, serialize=False),
                        ),
                        ("message_id", models.CharField(max_length=998)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("reply", "Reply"),
                                    ("auto_reply", "Auto Reply"),
                                    ("bounce", "Bounce"),
                                    ("delay", "Delay"),
                                ],
                                max_length=16,
                            ),
                        ),
                        (
                            "matched_by",
                            models.CharField(
                                choices=[("headers", "Headers"), ("sender", "Sender"), ("recipient", "Recipient")],
                                max_length=16,
                            ),
                        ),
                        ("from_email", models.CharField(blank=True, default="", max_length=320)),
                        ("subject", models.CharField(blank=True, default="", max_length=998)),
                        ("received_at", models.DateTimeField()),
                        ("snippet", models.TextField(blank=True, default="")),
                        ("auto_reply_reason", models.CharField(blank=True, default="", max_length=255)),
                        ("dsn_recipient", models.CharField(blank=True, default="", max_length=320)),
                        ("dsn_status", models.CharField(blank=True, default="", max_length=16)),
                        ("dsn_diagnostic", models.TextField(blank=True, default="")),
                        ("applied", models.BooleanField(default=False, help_text="Whether it moved the enrollment.")),
                        ("imap_uid", models.BigIntegerField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "enrollment",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="inbound_messages",
                                to="enrollments.enrollment",
                            ),
                        ),
                        (
                            "scheduled_send",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="inbound_messages",
                                to="mailing.scheduledsend",
                            ),
                        ),
                        (
                            "smtp_credential",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="inbound_messages",
                                to="campaigns.smtpcredential",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "mailing_inboundmessage",
                        "indexes": [models.Index(fields=["enrollment", "received_at"], name="inbound_enrollment")],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("smtp_credential", "message_id"), name="inbound_unique_per_mailbox"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="ProviderEvent",
                    fields=[
                        (
                            "id",
                            models.UUIDField(default=core.ids.uuid7, editable=False, primary_key=True, serialize=False),
                        ),
                        ("provider", models.CharField(default="smtp2go", max_length=32)),
                        ("idempotency_key", models.CharField(max_length=255)),
                        (
                            "event_type",
                            models.CharField(
                                choices=[
                                    ("bounced", "Bounced"),
                                    ("deferred", "Deferred"),
                                    ("rejected", "Rejected"),
                                    ("complained", "Complained"),
                                    ("unsubscribed", "Unsubscribed"),
                                    ("delivered", "Delivered"),
                                    ("processed", "Processed"),
                                    ("opened", "Opened"),
                                    ("clicked", "Clicked"),
                                    ("unknown", "Unknown"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("provider_event", models.CharField(blank=True, default="", max_length=64)),
                        ("recipient", models.CharField(blank=True, default="", max_length=320)),
                        ("message_id", models.CharField(blank=True, default="", max_length=998)),
                        ("reason", models.TextField(blank=True, default="")),
                        ("occurred_at", models.DateTimeField(blank=True, null=True)),
                        ("raw", models.JSONField()),
                        (
                            "outcome",
                            models.CharField(blank=True, default="", help_text="What applying it did.", max_length=64),
                        ),
                        ("received_at", models.DateTimeField(auto_now_add=True)),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "account",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="provider_events",
                                to="accounts.account",
                            ),
                        ),
                        (
                            "enrollment",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="provider_events",
                                to="enrollments.enrollment",
                            ),
                        ),
                        (
                            "scheduled_send",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="provider_events",
                                to="mailing.scheduledsend",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "mailing_providerevent",
                        "indexes": [
                            models.Index(
                                condition=models.Q(("processed_at__isnull", True)),
                                fields=["received_at"],
                                name="provider_event_pending",
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("account", "idempotency_key"), name="provider_event_unique_key"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="TrackingEvent",
                    fields=[
                        (
                            "id",
                            models.UUIDField(default=core.ids.uuid7, editable=False, primary_key=True, serialize=False),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[("open", "Open"), ("click", "Click"), ("unsubscribe", "Unsubscribe")],
                                max_length=16,
                            ),
                        ),
                        ("counted", models.BooleanField(default=True)),
                        ("url", models.TextField(blank=True, default="")),
                        ("user_agent", models.CharField(blank=True, default="", max_length=512)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("created_at", models.DateTimeField()),
                        (
                            "enrollment",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="tracking_events",
                                to="enrollments.enrollment",
                            ),
                        ),
                        (
                            "scheduled_send",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="tracking_events",
                                to="mailing.scheduledsend",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "mailing_trackingevent",
                        "indexes": [models.Index(fields=["scheduled_send", "kind"], name="tracking_send_kind")],
                    },
                ),
            ],
        ),
        *[migrations.AlterModelTable(name=model, table=None) for model in MOVED],
        migrations.RunPython(content_types_to_inbound, content_types_to_mailing),
    ]
