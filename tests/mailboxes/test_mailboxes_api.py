"""/api/mailboxes: the account's mailboxes, their view, and the rules every write meets."""

import pytest
from django.db import connection

from mailboxes.models import Mailbox
from tests.campaigns.factories import CampaignFactory, SmtpCredentialFactory
from tests.mailboxes.factories import MailboxFactory

PASSWORD_MAILBOX = {
    "email": "sales@acme.com",
    "from_name": "Sales",
    "smtp_host": "smtp.acme.com",
    "smtp_port": 587,
    "smtp_username": "sales@acme.com",
    "smtp_password": "smtp-secret-1",
    "daily_limit": 150,
    "imap_host": "imap.acme.com",
    "imap_username": "sales@acme.com",
    "imap_password": "imap-secret-1",
}


@pytest.mark.django_db
def test_create_answers_the_mailbox_view_without_any_secret(api):
    response = api.post("/api/mailboxes", PASSWORD_MAILBOX, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert b"smtp-secret-1" not in response.content and b"imap-secret-1" not in response.content
    assert {k: body[k] for k in ("email", "from_name", "daily_limit", "auth_kind", "smtp_security", "imap_port")} == {
        "email": "sales@acme.com",
        "from_name": "Sales",
        "daily_limit": 150,
        "auth_kind": "password",
        "smtp_security": "starttls",
        "imap_port": 993,
    }
    assert body["ready"] is True and body["imap_configured"] is True and body["imap_status"] == "never_polled"
    assert (body["sent_today"], body["remaining_today"], body["bounce_rate"], body["used_by"]) == (0, 150, 0.0, [])
    assert len(body["forecast"]) == 14 and body["forecast"][0]["daily_limit"] == 150
    with connection.cursor() as cursor:
        cursor.execute("SELECT smtp_password, imap_password FROM mailboxes_mailbox WHERE id = %s", [body["id"]])
        stored = cursor.fetchone()
    assert "smtp-secret-1" not in stored[0] and "imap-secret-1" not in stored[1]
    assert Mailbox.objects.get(pk=body["id"]).smtp_password == "smtp-secret-1"


@pytest.mark.django_db
def test_the_address_is_unique_per_account_whatever_its_case(api, outsider_api):
    assert api.post("/api/mailboxes", PASSWORD_MAILBOX, format="json").status_code == 201

    again = api.post("/api/mailboxes", {**PASSWORD_MAILBOX, "email": "SALES@Acme.com"}, format="json")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "mailbox_exists"
    assert Mailbox.objects.filter(email__iexact="sales@acme.com").count() == 1
    assert outsider_api.post("/api/mailboxes", PASSWORD_MAILBOX, format="json").status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"smtp_port": 70000}, "smtp_port"),
        ({"daily_limit": 0}, "daily_limit"),
        ({"email": "not an address"}, "email"),
        ({"from_name": "Sales\r\nBcc: x@evil.test"}, "from_name"),
        ({"smtp_security": "tls13"}, "smtp_security"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(api, change, field):
    response = api.post("/api/mailboxes", {**PASSWORD_MAILBOX, **change}, format="json")

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "validation_failed"
    assert field in response.json()["error"]["details"]
    assert not Mailbox.objects.exists()


@pytest.mark.django_db
def test_a_password_mailbox_needs_its_smtp_settings_and_an_oauth2_one_its_address_and_provider(api):
    response = api.post("/api/mailboxes", {"email": "a@acme.com"}, format="json")
    assert response.status_code == 422
    assert set(response.json()["error"]["details"]) == {"smtp_host", "smtp_port", "smtp_username", "smtp_password"}

    response = api.post("/api/mailboxes", {"auth_kind": "oauth2", "smtp_password": "x"}, format="json")
    assert response.status_code == 422
    assert set(response.json()["error"]["details"]) == {"email", "oauth_provider", "smtp_password"}


@pytest.mark.django_db
def test_an_oauth2_mailbox_for_a_provider_without_a_client_is_refused(api, settings):
    settings.OAUTH_PROVIDERS = {**settings.OAUTH_PROVIDERS, "google": {**settings.OAUTH_PROVIDERS["google"]}}
    settings.OAUTH_PROVIDERS["google"]["client_id"] = ""
    body = {"email": "me@gmail.example", "auth_kind": "oauth2", "oauth_provider": "google"}

    response = api.post("/api/mailboxes", body, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "oauth_not_configured"
    assert not Mailbox.objects.exists()


@pytest.mark.django_db
def test_update_changes_only_what_is_given_and_keeps_the_passwords(api):
    created = api.post("/api/mailboxes", PASSWORD_MAILBOX, format="json").json()

    response = api.patch(f"/api/mailboxes/{created['id']}", {"daily_limit": 40, "from_name": "Team"}, format="json")

    assert response.status_code == 200
    assert (response.json()["daily_limit"], response.json()["from_name"]) == (40, "Team")
    stored = Mailbox.objects.get(pk=created["id"])
    assert (stored.smtp_password, stored.imap_password) == ("smtp-secret-1", "imap-secret-1")
    cleared = api.patch(f"/api/mailboxes/{created['id']}", {"imap_password": ""}, format="json")
    assert cleared.json()["imap_configured"] is False
    assert Mailbox.objects.get(pk=created["id"]).smtp_password == "smtp-secret-1"


@pytest.mark.django_db
def test_another_accounts_mailbox_is_not_found_for_every_method(api, outsider):
    theirs = MailboxFactory(account=outsider)
    for method, path in [
        ("get", f"/api/mailboxes/{theirs.pk}"),
        ("patch", f"/api/mailboxes/{theirs.pk}"),
        ("delete", f"/api/mailboxes/{theirs.pk}"),
        ("post", f"/api/mailboxes/{theirs.pk}/reenable"),
        ("post", f"/api/mailboxes/{theirs.pk}/oauth/start"),
        ("get", "/api/mailboxes/not-a-uuid"),
    ]:
        response = getattr(api, method)(path, {}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "mailbox_not_found"
    assert [m["id"] for m in api.get("/api/mailboxes").json()] == []
    assert Mailbox.objects.get(pk=theirs.pk).daily_limit == 200


@pytest.mark.django_db
def test_a_mailbox_in_use_cannot_be_deleted_and_an_unused_one_can(api, owner):
    used = MailboxFactory(account=owner)
    campaign = CampaignFactory(account=owner, name="Q2 launch")
    SmtpCredentialFactory(campaign=campaign, mailbox=used)
    unused = MailboxFactory(account=owner)

    refused = api.delete(f"/api/mailboxes/{used.pk}")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "mailbox_in_use"
    assert refused.json()["error"]["details"] == {"campaign_ids": [str(campaign.pk)]}
    assert "Q2 launch" in refused.json()["error"]["message"]
    assert Mailbox.objects.filter(pk=used.pk).exists()

    assert api.delete(f"/api/mailboxes/{unused.pk}").status_code == 204
    assert not Mailbox.objects.filter(pk=unused.pk).exists()


@pytest.mark.django_db
def test_the_view_lists_the_campaigns_and_journeys_using_it(api, owner):
    mailbox = MailboxFactory(account=owner)
    campaign = CampaignFactory(account=owner, name="B campaign")
    journey = CampaignFactory(account=owner, name="A journey", kind="journey")
    SmtpCredentialFactory(campaign=campaign, mailbox=mailbox, campaign_daily_limit=5)
    SmtpCredentialFactory(campaign=journey, mailbox=mailbox)

    used_by = api.get(f"/api/mailboxes/{mailbox.pk}").json()["used_by"]

    assert [(u["name"], u["kind"], u["campaign_daily_limit"]) for u in used_by] == [
        ("A journey", "journey", None),
        ("B campaign", "campaign", 5),
    ]


@pytest.mark.django_db
def test_reenable_clears_the_disabled_state_for_every_campaign(api, owner):
    from django.utils import timezone

    mailbox = MailboxFactory(account=owner, disabled_at=timezone.now(), disabled_reason="Bounce rate 9%")

    response = api.post(f"/api/mailboxes/{mailbox.pk}/reenable")

    assert response.status_code == 200
    assert (response.json()["disabled_at"], response.json()["disabled_reason"]) == (None, "")


@pytest.mark.django_db
def test_a_password_mailbox_cannot_start_an_oauth2_connection(api, owner):
    mailbox = MailboxFactory(account=owner)
    response = api.post(f"/api/mailboxes/{mailbox.pk}/oauth/start")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "mailbox_not_oauth2"


@pytest.mark.django_db
def test_list_and_show_keep_their_query_counts(api, owner, django_assert_max_num_queries):
    for _ in range(3):
        mailbox = MailboxFactory(account=owner)
        SmtpCredentialFactory(campaign=CampaignFactory(account=owner), mailbox=mailbox)
    with django_assert_max_num_queries(3):
        assert len(api.get("/api/mailboxes").json()) == 3
    with django_assert_max_num_queries(9):
        assert api.get(f"/api/mailboxes/{mailbox.pk}").status_code == 200


@pytest.mark.django_db
def test_the_schema_documents_every_mailbox_endpoint(api):
    paths = api.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert {"get", "post"} <= set(paths["/api/mailboxes/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/mailboxes/{id}/"])
    assert "post" in paths["/api/mailboxes/{id}/reenable/"]
    assert {"200", "404", "422"} <= set(paths["/api/mailboxes/{id}/oauth/start/"]["post"]["responses"])
    assert {"204", "404", "409"} <= set(paths["/api/mailboxes/{id}/"]["delete"]["responses"])


@pytest.mark.django_db
def test_pointing_a_mailbox_at_another_server_needs_its_password_again(api):
    created = api.post("/api/mailboxes", PASSWORD_MAILBOX, format="json").json()

    moved = api.patch(f"/api/mailboxes/{created['id']}", {"smtp_host": "smtp.attacker.example"}, format="json")
    assert moved.status_code == 422
    assert moved.json()["error"]["details"] == {
        "smtp_password": ["Required when smtp_host change: a stored password is only sent where it was given for."]
    }
    imap = api.patch(f"/api/mailboxes/{created['id']}", {"imap_username": "other@acme.com"}, format="json")
    assert set(imap.json()["error"]["details"]) == {"imap_password"}
    assert Mailbox.objects.get(pk=created["id"]).smtp_host == "smtp.acme.com"

    body = {"smtp_host": "smtp2.acme.com", "smtp_password": "smtp-secret-2"}
    assert api.patch(f"/api/mailboxes/{created['id']}", body, format="json").status_code == 200
    # Case is no change of server or login.
    same = api.patch(f"/api/mailboxes/{created['id']}", {"smtp_username": "SALES@acme.com"}, format="json")
    assert same.status_code == 200


@pytest.mark.django_db
def test_an_oauth2_mailbox_keeps_its_providers_servers(api, owner):
    mailbox = MailboxFactory(
        account=owner, auth_kind="oauth2", oauth_provider="google", smtp_password="", oauth_refresh_token="r"
    )
    response = api.patch(f"/api/mailboxes/{mailbox.pk}", {"smtp_host": "smtp.attacker.example"}, format="json")
    assert response.status_code == 422
    assert set(response.json()["error"]["details"]) == {"smtp_host"}


@pytest.mark.django_db
def test_a_settings_change_does_not_undo_a_disable_that_happened_meanwhile(owner):
    from mailboxes.services import mailbox_update
    from mailing.services import mailbox_disable

    mailbox = MailboxFactory(account=owner)
    loaded = Mailbox.objects.get(pk=mailbox.pk)  # read by a request before the bounce guard fires
    assert mailbox_disable(mailbox_id=mailbox.pk, reason="Bounce rate 9%")

    mailbox_update(mailbox=loaded, data={"from_name": "Sales"})

    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert (stored.from_name, stored.disabled_reason) == ("Sales", "Bounce rate 9%")
    assert stored.disabled_at is not None


@pytest.mark.django_db
def test_a_campaign_item_cannot_rename_a_mailbox_to_another_ones_address(api, owner):
    first = MailboxFactory(account=owner, email="one@acme.com", smtp_username="one@acme.com")
    MailboxFactory(account=owner, email="two@acme.com", smtp_username="two@acme.com")
    body = {
        "name": "Clash",
        "smtp_credentials": [{"mailbox_id": str(first.pk), "from_email": "two@acme.com"}],
        "sequence_steps": [{"subject": "Hi", "body_html": "<p>Hi</p>"}],
    }

    response = api.post("/api/campaigns", body, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["details"] == {
        "smtp_credentials[0].from_email": [
            "Another mailbox of the account sends as two@acme.com: name it by mailbox_id instead."
        ]
    }
    assert Mailbox.objects.get(pk=first.pk).email == "one@acme.com"
