"""Every SMTP credential becomes a campaign's use of an account-level mailbox (issue 15).

1. Each credential's settings move to a `mailboxes.Mailbox`: one per
   (account, sending address, case-insensitive), so the three credentials of
   sales@acme.com in three campaigns become one mailbox used three times.
   When they differ, a later-updated credential's non-empty settings win
   (secrets included), the mailbox's `daily_limit` is the largest of theirs
   and each credential keeps its own former limit as `campaign_daily_limit`
   when it was lower, so no campaign can send more through it than before.
   A mailbox is disabled when all of its credentials were (the latest reason
   is kept): one old campaign's breach does not stop the live ones sharing
   the address. Re-enabling it once re-enables it everywhere. A credential
   without a sending address gets a mailbox of its own.
2. The day counters add up: each mailbox's `MailboxDay` is the sum of its
   credentials' `SmtpCredentialDay` rows, which stay as the per-campaign
   counters. Scheduled sends, enrollments and stats keep pointing at the
   credential ids they had, so nothing is re-sent, lost or recounted.
3. The settings columns leave the credential table.

Backwards, each credential gets its mailbox's settings back (day counters
per credential were never touched) and the mailboxes are deleted, so
migrating forward again merges them anew.
"""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

import core.fields

MOVED = (
    "from_name",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_security",
    "imap_host",
    "imap_port",
    "imap_username",
    "imap_password",
)


def credentials_to_mailboxes(apps, schema_editor):
    Credential = apps.get_model("campaigns", "SmtpCredential")
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    CredentialDay = apps.get_model("mailing", "SmtpCredentialDay")
    MailboxDay = apps.get_model("mailboxes", "MailboxDay")

    mailboxes, members = {}, {}
    for credential in Credential.objects.select_related("campaign").order_by("updated_at", "id").iterator():
        address = credential.from_email.strip()
        key = (credential.campaign.account_id, address.lower()) if address else ("own", credential.pk)
        mailbox = mailboxes.get(key)
        if mailbox is None:
            mailbox = mailboxes[key] = Mailbox(
                account_id=credential.campaign.account_id,
                email=address,
                daily_limit=credential.daily_limit,
                **{name: getattr(credential, name) for name in MOVED},
            )
        else:
            for name in MOVED:
                value = getattr(credential, name)
                if value not in ("", None):
                    setattr(mailbox, name, value)
            mailbox.daily_limit = max(mailbox.daily_limit, credential.daily_limit)
        members.setdefault(key, []).append(credential)

    for key, mailbox in mailboxes.items():
        disabled = [c for c in members[key] if c.disabled_at is not None]
        if len(disabled) == len(members[key]):
            # Disabled only when every campaign had stopped using it: an old campaign's breach must not stop
            # the live ones sharing the address (their own guard still judges what they send from now on).
            latest = max(disabled, key=lambda c: c.disabled_at)
            mailbox.disabled_at, mailbox.disabled_reason = latest.disabled_at, latest.disabled_reason
        if not mailbox.smtp_security:
            mailbox.smtp_security = "ssl" if mailbox.smtp_port == 465 else "starttls"
        mailbox.save()
        for credential in members[key]:
            credential.mailbox_id = mailbox.pk
            credential.campaign_daily_limit = (
                credential.daily_limit if credential.daily_limit < mailbox.daily_limit else None
            )
            credential.save(update_fields=["mailbox", "campaign_daily_limit"])

    totals = {}
    mailbox_of = {c.pk: c.mailbox_id for group in members.values() for c in group}
    for row in CredentialDay.objects.iterator():
        total = totals.setdefault((mailbox_of[row.smtp_credential_id], row.day), [0, 0, 0])
        total[0] += row.reserved
        total[1] += row.sent
        total[2] += row.bounced
    MailboxDay.objects.bulk_create(
        [
            MailboxDay(mailbox_id=mailbox_id, day=day, reserved=reserved, sent=sent, bounced=bounced)
            for (mailbox_id, day), (reserved, sent, bounced) in totals.items()
        ],
        batch_size=1000,
    )


def mailboxes_to_credentials(apps, schema_editor):
    """Each credential gets its mailbox's settings back; the mailboxes are then deleted (they are recreated,
    merged again, when migrating forward)."""
    Credential = apps.get_model("campaigns", "SmtpCredential")
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    for credential in Credential.objects.select_related("mailbox").iterator():
        mailbox = credential.mailbox
        for name in MOVED:
            setattr(credential, name, getattr(mailbox, name))
        credential.from_email = mailbox.email
        if not credential.smtp_security:
            credential.smtp_security = "ssl" if credential.smtp_port == 465 else "starttls"
        credential.daily_limit = credential.campaign_daily_limit or mailbox.daily_limit
        credential.disabled_at, credential.disabled_reason = mailbox.disabled_at, mailbox.disabled_reason[:255]
        credential.mailbox = None
        credential.save()
    Mailbox.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_credential_from_email_optional"),
        ("mailboxes", "0001_initial"),
        ("mailing", "0006_inbound_models_move_to_inbound"),
    ]

    operations = [
        migrations.AddField(
            model_name="smtpcredential",
            name="mailbox",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.RESTRICT,
                related_name="credentials",
                to="mailboxes.mailbox",
            ),
        ),
        migrations.AddField(
            model_name="smtpcredential",
            name="campaign_daily_limit",
            field=models.PositiveIntegerField(
                blank=True,
                null=True,
                help_text="This campaign's own cap on first messages per day through the mailbox "
                "(empty: the mailbox's daily limit alone).",
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.RunPython(credentials_to_mailboxes, migrations.RunPython.noop),
        # The rows just written leave deferred FK checks pending; ALTER TABLE refuses to run past them.
        migrations.RunSQL("SET CONSTRAINTS ALL IMMEDIATE", migrations.RunSQL.noop),
        migrations.RemoveConstraint(
            model_name="smtpcredential",
            name="credential_daily_limit_positive",
        ),
        migrations.RemoveConstraint(
            model_name="smtpcredential",
            name="credential_smtp_port_range",
        ),
        migrations.RemoveConstraint(
            model_name="smtpcredential",
            name="credential_imap_port_range",
        ),
        migrations.RemoveConstraint(
            model_name="smtpcredential",
            name="credential_security_known",
        ),
        # Backwards the settings columns come back nullable, are filled from the mailboxes, and only then
        # become required again with their checks (the operations above, reversed).
        *[
            migrations.AlterField(model_name="smtpcredential", name=name, field=field)
            for name, field in (
                ("smtp_host", models.CharField(max_length=255, null=True)),
                ("smtp_port", models.PositiveIntegerField(null=True)),
                ("smtp_username", models.CharField(max_length=255, null=True)),
                ("smtp_password", core.fields.EncryptedTextField(null=True)),
            )
        ],
        migrations.RunSQL(migrations.RunSQL.noop, "SET CONSTRAINTS ALL IMMEDIATE"),
        migrations.RunPython(migrations.RunPython.noop, mailboxes_to_credentials),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="daily_limit",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="disabled_at",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="disabled_reason",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="from_email",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="from_name",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="imap_host",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="imap_password",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="imap_port",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="imap_username",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="smtp_host",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="smtp_password",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="smtp_port",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="smtp_security",
        ),
        migrations.RemoveField(
            model_name="smtpcredential",
            name="smtp_username",
        ),
        migrations.AlterField(
            model_name="smtpcredential",
            name="mailbox",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.RESTRICT, related_name="credentials", to="mailboxes.mailbox"
            ),
        ),
        migrations.AddConstraint(
            model_name="smtpcredential",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("campaign_daily_limit__isnull", True), ("campaign_daily_limit__gte", 1), _connector="OR"
                ),
                name="credential_campaign_daily_limit_positive",
            ),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="bounce_rate_threshold",
            field=models.FloatField(
                default=8.0,
                help_text="This campaign's bounce rate (%) through a mailbox at which the mailbox is disabled, for "
                "every campaign using it; in (0, 100].",
            ),
        ),
    ]
