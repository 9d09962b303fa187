"""Admin: the account page shows the SMTP2GO webhook URL, never the Authorization value; inbound lists load."""

import pytest
from django.contrib.auth.models import User

from inbound.models import ImapSyncState

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    client.force_login(user)
    return client


def test_the_account_page_shows_the_webhook_url_and_keeps_the_authorization_write_only(admin_client, owner):
    owner.inbound_webhook_authorization = "Bearer very-secret-value"
    owner.save()

    page = admin_client.get(f"/admin/accounts/account/{owner.pk}/change/").content.decode()

    assert f"/api/inbound/smtp2go/{owner.inbound_webhook_token}" in page
    assert "very-secret-value" not in page

    response = admin_client.post(
        f"/admin/accounts/account/{owner.pk}/change/",
        {
            "name": owner.name,
            "timezone": "UTC",
            "monthly_limit": "",
            "new_inbound_webhook_authorization": "Basic c210cDJnbzpwdw==",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    owner.refresh_from_db()
    assert owner.inbound_webhook_authorization == "Basic c210cDJnbzpwdw=="


def test_inbound_lists_load_and_a_failing_mailbox_shows_its_error(admin_client, imap_credential_without_server):
    ImapSyncState.objects.create(
        mailbox=imap_credential_without_server.mailbox, last_error="IMAP login failed: bad password"
    )
    for path in ("inboundmessage", "providerevent", "trackingevent", "imapsyncstate"):
        response = admin_client.get(f"/admin/inbound/{path}/")
        assert response.status_code == 200, path
    assert b"IMAP login failed: bad password" in admin_client.get("/admin/inbound/imapsyncstate/").content


@pytest.fixture
def imap_credential_without_server(credential):
    return credential
