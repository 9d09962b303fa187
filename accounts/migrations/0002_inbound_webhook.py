"""Per-account inbound webhook secret (SMTP2GO) and optional Authorization value.

AddField computes a callable default once for every existing row, so the
secret is added empty and then filled row by row: no two accounts may share one.
"""

from django.db import migrations, models

import accounts.models
import core.fields


def fill_secrets(apps, schema_editor):
    Account = apps.get_model("accounts", "Account")
    for account in Account.objects.filter(inbound_webhook_secret="").only("pk"):
        Account.objects.filter(pk=account.pk).update(
            inbound_webhook_secret=accounts.models.new_inbound_webhook_secret()
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="inbound_webhook_authorization",
            field=core.fields.EncryptedTextField(
                blank=True, default="", help_text='Optional: "Basic <base64>" or "Bearer <token>" SMTP2GO must send.'
            ),
        ),
        migrations.AddField(
            model_name="account",
            name="inbound_webhook_secret",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(fill_secrets, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="account",
            name="inbound_webhook_secret",
            field=models.CharField(default=accounts.models.new_inbound_webhook_secret, editable=False, max_length=64),
        ),
    ]
