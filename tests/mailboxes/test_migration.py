"""Credentials became campaigns' uses of account-level mailboxes (campaigns 0004, inbound 0002), with real rows.

The rows are written with the models as they stood before mailboxes existed
(the executor's historical apps), then the database is migrated forward, and
back again.
"""

import datetime

import pytest
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from campaigns.models import SmtpCredential
from enrollments.models import Enrollment
from inbound.models import ImapSyncState, InboundMessage
from mailboxes.models import Mailbox, MailboxDay
from mailing.models import ScheduledSend, SmtpCredentialDay
from tests.campaigns.factories import CampaignFactory, SmtpCredentialFactory, enroll
from tests.mailboxes.factories import MailboxFactory

BEFORE_MAILBOXES = [
    ("campaigns", "0003_credential_from_email_optional"),
    ("inbound", "0001_initial"),
    ("mailing", "0006_inbound_models_move_to_inbound"),
    ("mailboxes", None),
]

NOW = timezone.now().replace(microsecond=0)
TODAY = datetime.date(2026, 3, 10)
YESTERDAY = TODAY - datetime.timedelta(days=1)
DISABLED_REASON = "Bounce rate 12.5% reached the campaign's threshold of 10%."


def _migrate(targets):
    """Migrate the test database to `targets`; the models as they stand there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _restore_latest_schema() -> None:
    """Whatever failed, the next test finds the schema it expects (a migration that failed on this test's rows
    fails again on them: they are dropped first)."""
    try:
        _migrate(_latest())
    except DatabaseError:
        tables = [t for t in connection.introspection.table_names() if t != "django_migrations"]
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(connection.ops.quote_name(t) for t in tables)} CASCADE")
        _migrate(_latest())


@pytest.fixture
def restore_schema(request):
    request.addfinalizer(_restore_latest_schema)


@pytest.fixture
def old_apps(restore_schema):
    return _migrate(BEFORE_MAILBOXES)


def _credential_settings(apps, pk):
    credential = apps.get_model("campaigns", "SmtpCredential").objects.get(pk=pk)
    return {
        name: getattr(credential, name)
        for name in (
            "campaign_id",
            "label",
            "from_email",
            "from_name",
            "smtp_host",
            "smtp_port",
            "smtp_username",
            "smtp_password",
            "smtp_security",
            "daily_limit",
            "imap_host",
            "imap_port",
            "imap_username",
            "imap_password",
            "disabled_at",
            "disabled_reason",
        )
    }


def _write_old_rows(apps) -> dict:
    """Two accounts' credentials, counters, sends, enrollments and inbound rows, as the old models hold them."""
    Account = apps.get_model("accounts", "Account")
    Campaign = apps.get_model("campaigns", "Campaign")
    Step = apps.get_model("campaigns", "SequenceStep")
    Credential = apps.get_model("campaigns", "SmtpCredential")
    Contact = apps.get_model("contacts", "Contact")
    OldEnrollment = apps.get_model("enrollments", "Enrollment")
    Send = apps.get_model("mailing", "ScheduledSend")
    CredentialDay = apps.get_model("mailing", "SmtpCredentialDay")
    SyncState = apps.get_model("inbound", "ImapSyncState")
    Inbound = apps.get_model("inbound", "InboundMessage")

    acme = Account.objects.create(name="Acme")
    beta = Account.objects.create(name="Beta")
    smtp = {"smtp_host": "smtp.acme.com", "smtp_port": 587, "smtp_security": "starttls"}
    imap = {
        "imap_host": "imap.acme.com",
        "imap_port": 993,
        "imap_username": "sales@acme.com",
        "imap_password": "imap-pw-acme",
    }
    specs = {
        # name: (account, credential fields, updated_at)
        "first": (
            acme,
            {**smtp, "from_email": "sales@acme.com", "smtp_username": "sales@acme.com", "smtp_password": "pw-oldest"},
            NOW - datetime.timedelta(days=3),
        ),
        "capped": (
            acme,
            {
                **smtp,
                **imap,
                "from_email": "Sales@ACME.com",
                "from_name": "Acme Sales",
                "smtp_username": "sales@acme.com",
                "smtp_password": "pw-middle",
                "daily_limit": 100,
                "disabled_at": NOW - datetime.timedelta(days=2),
                "disabled_reason": DISABLED_REASON,
            },
            NOW - datetime.timedelta(days=2),
        ),
        "latest": (
            acme,
            {**smtp, "from_email": "sales@acme.com", "smtp_username": "sales@acme.com", "smtp_password": "pw-latest"},
            NOW - datetime.timedelta(days=1),
        ),
        "no_address": (
            acme,
            {**smtp, "from_email": "", "smtp_username": "acme-login", "smtp_password": "pw-own", "daily_limit": 50},
            NOW - datetime.timedelta(hours=5),
        ),
        "beta": (
            beta,
            {
                "smtp_host": "smtp.beta.example",
                "smtp_port": 465,
                "smtp_security": "ssl",
                "from_email": "sales@acme.com",  # the same address in another account: a mailbox of its own
                "smtp_username": "beta-user",
                "smtp_password": "pw-beta",
                "daily_limit": 75,
                "imap_host": "imap.beta.example",
                "imap_port": 143,
                "imap_username": "beta-imap",
                "imap_password": "imap-pw-beta",
            },
            NOW - datetime.timedelta(hours=1),
        ),
    }
    statuses = {  # enrollment status, its timestamps, and its step-1 send's status
        "first": ("sent", {"sent_at": NOW}, "sent"),
        "capped": ("bounced", {"sent_at": NOW, "bounced_at": NOW, "bounce_reason": "550 no such user"}, "bounced"),
        "latest": ("pending", {}, "scheduled"),
        "no_address": ("replied", {"sent_at": NOW, "replied_at": NOW}, "sent"),
        "beta": ("opened", {"sent_at": NOW, "opened_at": NOW}, "queued"),
    }
    ids = {"acme": acme.pk, "beta": beta.pk, "credentials": {}, "enrollments": {}, "sends": {}}
    for n, (name, (account, fields, updated_at)) in enumerate(specs.items()):
        campaign = Campaign.objects.create(account=account, name=f"Campaign {name}")
        step = Step.objects.create(campaign=campaign, position=1, subject="Hi", body_html="<p>Hi</p>")
        credential = Credential.objects.create(campaign=campaign, label=f"Sender {name}", **fields)
        Credential.objects.filter(pk=credential.pk).update(updated_at=updated_at)
        status, stamps, send_status = statuses[name]
        contact = Contact.objects.create(account=account, email=f"person{n}@example.org")
        enrollment = OldEnrollment.objects.create(
            campaign=campaign, contact=contact, smtp_credential=credential, status=status, **stamps
        )
        send = Send.objects.create(
            campaign=campaign,
            enrollment=enrollment,
            step=step,
            smtp_credential=credential,
            status=send_status,
            send_at=NOW,
            sent_at=NOW if send_status in ("sent", "bounced") else None,
            message_id=f"<send-{n}@outreach.example>" if send_status in ("sent", "bounced") else None,
        )
        ids["credentials"][name] = credential.pk
        ids["enrollments"][enrollment.pk] = (credential.pk, status)
        ids["sends"][send.pk] = (credential.pk, send_status)

    cred = ids["credentials"]
    CredentialDay.objects.create(smtp_credential_id=cred["first"], day=TODAY, reserved=5, sent=4, bounced=1)
    CredentialDay.objects.create(smtp_credential_id=cred["latest"], day=TODAY, reserved=7, sent=6, bounced=0)
    CredentialDay.objects.create(smtp_credential_id=cred["capped"], day=YESTERDAY, reserved=3, sent=2, bounced=1)
    CredentialDay.objects.create(smtp_credential_id=cred["beta"], day=TODAY, reserved=9, sent=9, bounced=0)

    for name, last_uid in {"first": 10, "capped": 42, "latest": 7, "no_address": 3, "beta": 99}.items():
        SyncState.objects.create(smtp_credential_id=cred[name], last_uid=last_uid, uidvalidity=1000)

    def inbound(message_id, credential):
        return Inbound.objects.create(
            message_id=message_id, smtp_credential_id=credential, kind="reply", matched_by="headers", received_at=NOW
        ).pk

    ids["inbound"] = {
        "dup_first": inbound("<dup@customer.example>", cred["first"]),  # stored by two merged credentials
        "dup_capped": inbound("<dup@customer.example>", cred["capped"]),
        "latest": inbound("<only-latest@customer.example>", cred["latest"]),
        "no_address": inbound("<own@customer.example>", cred["no_address"]),
        "beta": inbound("<dup@customer.example>", cred["beta"]),  # same Message-ID, another account's mailbox
        "orphan": inbound("<orphan@customer.example>", None),
    }
    ids["old_settings"] = {name: _credential_settings(apps, pk) for name, pk in cred.items()}
    ids["credential_days"] = sorted(
        CredentialDay.objects.values_list("smtp_credential_id", "day", "reserved", "sent", "bounced")
    )
    return ids


def _assert_migrated_forward(ids) -> dict:
    cred = ids["credentials"]
    credentials = {c.pk: c for c in SmtpCredential.objects.select_related("mailbox")}
    assert set(credentials) == set(cred.values())
    for name, pk in cred.items():
        assert credentials[pk].campaign_id == ids["old_settings"][name]["campaign_id"]
        assert credentials[pk].label == f"Sender {name}"

    # Account A: one mailbox for sales@acme.com whatever the case, one for the address-less credential.
    acme = Mailbox.objects.filter(account_id=ids["acme"])
    assert acme.count() == 2
    merged = acme.get(email__iexact="sales@acme.com")
    own = acme.get(email="")
    assert {credentials[cred[n]].mailbox_id for n in ("first", "capped", "latest")} == {merged.pk}
    assert credentials[cred["no_address"]].mailbox_id == own.pk

    assert merged.daily_limit == 200
    assert credentials[cred["capped"]].campaign_daily_limit == 100
    assert credentials[cred["first"]].campaign_daily_limit is None
    assert credentials[cred["latest"]].campaign_daily_limit is None
    assert merged.smtp_password == "pw-latest"  # the credential updated last wins
    assert (merged.smtp_host, merged.smtp_port, merged.smtp_username, merged.smtp_security) == (
        "smtp.acme.com",
        587,
        "sales@acme.com",
        "starttls",
    )
    assert (merged.imap_host, merged.imap_port, merged.imap_username, merged.imap_password) == (
        "imap.acme.com",
        993,
        "sales@acme.com",
        "imap-pw-acme",
    )
    assert merged.from_name == "Acme Sales"
    # One of the three credentials was disabled: the live two keep the shared mailbox enabled.
    assert (merged.disabled_at, merged.disabled_reason) == (None, "")
    with connection.cursor() as cursor:
        cursor.execute("SELECT smtp_password FROM mailboxes_mailbox WHERE id = %s", [merged.pk])
        assert cursor.fetchone()[0] not in ("", "pw-latest")  # still encrypted at rest

    assert (own.smtp_username, own.smtp_password, own.daily_limit, own.is_enabled) == ("acme-login", "pw-own", 50, True)
    assert credentials[cred["no_address"]].campaign_daily_limit is None

    # Counters: the mailbox's day is the sum of its credentials'; the credentials' rows are untouched.
    days = {(d.mailbox_id, d.day): (d.reserved, d.sent, d.bounced) for d in MailboxDay.objects.all()}
    beta = Mailbox.objects.get(account_id=ids["beta"])
    assert days == {
        (merged.pk, TODAY): (12, 10, 1),
        (merged.pk, YESTERDAY): (3, 2, 1),
        (beta.pk, TODAY): (9, 9, 0),
    }
    assert (
        sorted(SmtpCredentialDay.objects.values_list("smtp_credential_id", "day", "reserved", "sent", "bounced"))
        == ids["credential_days"]
    )

    # Nothing re-sent, lost or recounted: sends and enrollments keep their credential and status.
    assert {s.pk: (s.smtp_credential_id, s.status) for s in ScheduledSend.objects.all()} == ids["sends"]
    assert {e.pk: (e.smtp_credential_id, e.status) for e in Enrollment.objects.all()} == ids["enrollments"]

    # Reply detection: one state per mailbox, the one that read furthest.
    assert {s.mailbox_id: s.last_uid for s in ImapSyncState.objects.all()} == {merged.pk: 42, own.pk: 3, beta.pk: 99}

    inbound = {m.pk: m for m in InboundMessage.objects.all()}
    kept = ids["inbound"]
    assert set(inbound) == {kept[k] for k in ("dup_first", "latest", "no_address", "beta", "orphan")}
    assert inbound[kept["dup_first"]].mailbox_id == merged.pk  # the earliest of the two copies
    assert inbound[kept["latest"]].mailbox_id == merged.pk
    assert inbound[kept["no_address"]].mailbox_id == own.pk
    assert inbound[kept["beta"]].mailbox_id == beta.pk
    assert inbound[kept["orphan"]].mailbox_id is None

    # Account B: its own mailbox with exactly its credential's settings.
    old_beta = ids["old_settings"]["beta"]
    assert credentials[cred["beta"]].mailbox_id == beta.pk
    assert credentials[cred["beta"]].campaign_daily_limit is None
    assert beta.email == old_beta["from_email"]
    for name in ("smtp_host", "smtp_port", "smtp_username", "smtp_password", "smtp_security", "daily_limit"):
        assert getattr(beta, name) == old_beta[name], name
    for name in ("imap_host", "imap_port", "imap_username", "imap_password", "disabled_reason"):
        assert getattr(beta, name) == old_beta[name], name
    assert beta.disabled_at is None
    return {"merged": merged, "own": own, "beta": beta}


@pytest.mark.django_db(transaction=True)
def test_credentials_become_one_mailbox_per_address_and_account_keeping_every_row(old_apps):
    ids = _write_old_rows(old_apps)

    _migrate(_latest())

    _assert_migrated_forward(ids)


@pytest.mark.django_db(transaction=True)
def test_migrating_back_gives_each_credential_its_mailboxs_settings(old_apps):
    ids = _write_old_rows(old_apps)
    _migrate(_latest())
    mailboxes = _assert_migrated_forward(ids)
    merged = mailboxes["merged"]

    apps = _migrate(BEFORE_MAILBOXES)

    cred = ids["credentials"]
    back = {name: _credential_settings(apps, pk) for name, pk in cred.items()}
    for name in ("first", "capped", "latest"):
        settings = back[name]
        assert settings["from_email"].lower() == "sales@acme.com"
        assert settings["smtp_password"] == merged.smtp_password == "pw-latest"
        assert (settings["imap_host"], settings["imap_port"], settings["imap_username"], settings["imap_password"]) == (
            "imap.acme.com",
            993,
            "sales@acme.com",
            "imap-pw-acme",
        )
        assert (settings["disabled_at"], settings["disabled_reason"]) == (None, "")
        assert settings["campaign_id"] == ids["old_settings"][name]["campaign_id"]
    assert [back[n]["daily_limit"] for n in ("first", "capped", "latest")] == [200, 100, 200]
    assert back["no_address"] == ids["old_settings"]["no_address"]
    assert back["beta"] == ids["old_settings"]["beta"]

    CredentialDay = apps.get_model("mailing", "SmtpCredentialDay")
    assert (
        sorted(CredentialDay.objects.values_list("smtp_credential_id", "day", "reserved", "sent", "bounced"))
        == ids["credential_days"]
    )
    Send = apps.get_model("mailing", "ScheduledSend")
    assert {s.pk: (s.smtp_credential_id, s.status) for s in Send.objects.all()} == ids["sends"]
    states = {s.smtp_credential_id: s.last_uid for s in apps.get_model("inbound", "ImapSyncState").objects.all()}
    assert states == {cred["first"]: 42, cred["no_address"]: 3, cred["beta"]: 99}
    assert "mailboxes_mailbox" not in connection.introspection.table_names()


@pytest.mark.django_db(transaction=True)
def test_migrating_back_from_mailboxes_made_after_the_move_gives_each_credential_its_settings(owner, restore_schema):
    shared = MailboxFactory(
        account=owner,
        email="team@acme.com",
        smtp_username="team@acme.com",
        smtp_password="pw-shared",
        daily_limit=300,
        imap_host="imap.acme.com",
        imap_port=993,
        imap_username="team@acme.com",
        imap_password="imap-pw-shared",
    )
    capped = SmtpCredentialFactory(campaign=CampaignFactory(account=owner), mailbox=shared, campaign_daily_limit=40)
    full = SmtpCredentialFactory(campaign=CampaignFactory(account=owner), mailbox=shared)
    enrollment = enroll(capped.campaign, "sent", credential=capped)
    SmtpCredentialDay.objects.create(smtp_credential=capped, day=TODAY, reserved=2, sent=2)

    apps = _migrate(BEFORE_MAILBOXES)

    back = {c: _credential_settings(apps, c.pk) for c in (capped, full)}
    for settings in back.values():
        assert (settings["from_email"], settings["smtp_username"], settings["smtp_password"]) == (
            "team@acme.com",
            "team@acme.com",
            "pw-shared",
        )
        assert (settings["imap_host"], settings["imap_username"], settings["imap_password"]) == (
            "imap.acme.com",
            "team@acme.com",
            "imap-pw-shared",
        )
    assert (back[capped]["daily_limit"], back[full]["daily_limit"]) == (40, 300)
    OldEnrollment = apps.get_model("enrollments", "Enrollment")
    assert OldEnrollment.objects.get(pk=enrollment.pk).smtp_credential_id == capped.pk
    assert apps.get_model("mailing", "SmtpCredentialDay").objects.get().reserved == 2
