"""The mailbox admin as an operator uses it: what the pages show, and what a save or an action writes.

Every write goes through `mailboxes.services` (disabling through
`mailing.services.mailbox_disable`), so the refusals and the events are the
API's. Secrets are write-only: no page ever shows a stored password or token.
"""

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from mailboxes.models import Mailbox, MailboxDay
from mailboxes.services import mailbox_create
from mailing import limits
from mailing.models import ScheduledSend
from tests.campaigns.factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory, enroll
from webhooks.models import WebhookEvent

from .factories import MailboxFactory

pytestmark = pytest.mark.django_db

SMTP_SECRET = "smtp-SECRET-value"
IMAP_SECRET = "imap-SECRET-value"
CHANGELIST = "/admin/mailboxes/mailbox/"
ADD = "/admin/mailboxes/mailbox/add/"
OPERATOR = "ops-alice"


def change_url(mailbox) -> str:
    return f"/admin/mailboxes/mailbox/{mailbox.pk}/change/"


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser(OPERATOR, "alice@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


@pytest.fixture
def mailbox(owner):
    return mailbox_create(
        account=owner,
        email="sales@acme.example",
        from_name="Acme Sales",
        smtp_host="smtp.acme.example",
        smtp_port=587,
        smtp_username="sales@acme.example",
        smtp_password=SMTP_SECRET,
        daily_limit=50,
        imap_host="imap.acme.example",
        imap_username="sales@acme.example",
        imap_password=IMAP_SECRET,
    )


@pytest.fixture
def oauth_settings(settings):
    """A Google client for this server; the authorization endpoint is only redirected to, never called."""
    google = {
        **settings.OAUTH_PROVIDERS["google"],
        "client_id": "client-id-for-tests",
        "client_secret": "client-SECRET-for-tests",
        "authorization_url": "https://accounts.example.test/auth",
    }
    settings.OAUTH_PROVIDERS = {**settings.OAUTH_PROVIDERS, "google": google}
    return settings


def stored_secrets(mailbox_id) -> dict[str, str]:
    """The columns as PostgreSQL holds them (ciphertext), not as the model decrypts them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT smtp_password, imap_password, oauth_refresh_token, oauth_access_token "
            "FROM mailboxes_mailbox WHERE id = %s",
            [mailbox_id],
        )
        row = cursor.fetchone()
    return dict(zip(("smtp_password", "imap_password", "oauth_refresh_token", "oauth_access_token"), row, strict=True))


def assert_no_secret(html: str) -> None:
    assert "SECRET" not in html
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT smtp_password, imap_password, oauth_refresh_token, oauth_access_token, oauth_code_verifier "
            "FROM mailboxes_mailbox"
        )
        ciphertexts = [value for row in cursor.fetchall() for value in row if value]
    for ciphertext in ciphertexts:
        assert ciphertext not in html


def change_data(mailbox, **changes) -> dict:
    """The change form as the page posts it back untouched (blank password fields), with `changes`."""
    data = {
        "email": mailbox.email,
        "from_name": mailbox.from_name,
        "daily_limit": mailbox.daily_limit,
        "smtp_host": mailbox.smtp_host,
        "smtp_port": mailbox.smtp_port,
        "smtp_security": mailbox.smtp_security,
        "smtp_username": mailbox.smtp_username,
        "new_smtp_password": "",
        "imap_host": mailbox.imap_host,
        "imap_port": mailbox.imap_port or "",
        "imap_username": mailbox.imap_username,
        "new_imap_password": "",
    }
    data.update(changes)
    return data


def add_data(account, **changes) -> dict:
    data = {
        "account": account.pk,
        "auth_kind": "password",
        "oauth_provider": "",
        "email": "new@acme.example",
        "from_name": "New",
        "daily_limit": 120,
        "smtp_host": "smtp.acme.example",
        "smtp_port": 465,
        "smtp_security": "",
        "smtp_username": "new@acme.example",
        "new_smtp_password": "plain-new-password",
        "imap_host": "imap.acme.example",
        "imap_port": "",
        "imap_username": "new@acme.example",
        "new_imap_password": "plain-imap-password",
    }
    data.update(changes)
    return data


def errors_of(response):
    return response.context["adminform"].form.errors if response.context else response


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- pages ---------------------------------------------------------------------------------------------


def test_changelist_add_and_change_pages_render_and_never_show_a_secret(staff_client, owner, mailbox):
    oauth = MailboxFactory(
        account=owner,
        auth_kind="oauth2",
        oauth_provider="google",
        smtp_password="",
        oauth_refresh_token="refresh-SECRET-token",
        oauth_access_token="access-SECRET-token",
        oauth_token_expires_at=timezone.now() + datetime.timedelta(hours=1),
        oauth_connected_at=timezone.now(),
    )
    pages = [CHANGELIST, ADD, change_url(mailbox), change_url(oauth)]
    for url in pages:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content.decode())
    listing = staff_client.get(CHANGELIST).content.decode()
    assert "sales@acme.example" in listing and oauth.email in listing
    page = staff_client.get(change_url(mailbox)).content.decode()
    assert 'name="new_smtp_password"' in page and 'name="new_imap_password"' in page
    assert 'name="clear_imap_password"' in page
    # Reply detection and OAuth2 state are shown, read-only.
    assert "Reply detection" in page and "Password sign-in" in page
    connected = staff_client.get(change_url(oauth)).content.decode()
    assert "Google: connected" in connected and "Reconnect with OAuth2" in connected
    assert 'name="new_smtp_password"' not in connected


# --- creating ------------------------------------------------------------------------------------------


def test_adding_a_password_mailbox_saves_it_through_the_service_encrypted_at_rest(staff_client, owner):
    response = staff_client.post(ADD, add_data(owner))
    assert response.status_code == 302, errors_of(response)
    created = Mailbox.objects.get(account=owner, email="new@acme.example")
    assert created.smtp_password == "plain-new-password"
    assert created.imap_password == "plain-imap-password"
    # the model's defaults were applied on the way in: ssl on 465, IMAP on 993
    assert (created.smtp_security, created.imap_port, created.daily_limit) == ("ssl", 993, 120)
    raw = stored_secrets(created.pk)
    assert raw["smtp_password"] and raw["smtp_password"] != "plain-new-password"
    assert "plain-new-password" not in raw["smtp_password"]
    assert raw["imap_password"] and "plain-imap-password" not in raw["imap_password"]


def test_adding_a_password_mailbox_without_its_password_is_refused(staff_client, owner):
    response = staff_client.post(ADD, add_data(owner, new_smtp_password=""))
    assert response.status_code == 200
    assert "new_smtp_password" in errors_of(response)
    assert not Mailbox.objects.exists()


def test_a_second_mailbox_with_the_same_address_in_the_account_is_refused_and_nothing_is_written(
    staff_client, owner, mailbox
):
    response = staff_client.post(ADD, add_data(owner, email="SALES@Acme.example", smtp_username="other-login"))
    assert response.status_code == 200
    assert errors_of(response)
    assert list(Mailbox.objects.values_list("pk", flat=True)) == [mailbox.pk]


def test_the_add_page_shows_a_taken_address_on_the_email_field(staff_client, owner, mailbox):
    response = staff_client.post(ADD, add_data(owner, email="SALES@Acme.example", smtp_username="other-login"))
    assert response.status_code == 200
    assert set(errors_of(response)) == {"email"}


def test_the_same_address_in_another_account_is_accepted(staff_client, outsider, mailbox):
    response = staff_client.post(
        ADD, add_data(outsider, email="sales@acme.example", smtp_username="sales@acme.example")
    )
    assert response.status_code == 302, errors_of(response)
    assert Mailbox.objects.filter(email__iexact="sales@acme.example").count() == 2
    assert Mailbox.objects.get(account=outsider).email == "sales@acme.example"


def test_changing_an_address_to_one_the_account_has_is_refused_and_writes_nothing(staff_client, owner, mailbox):
    other = MailboxFactory(account=owner, email="support@acme.example", smtp_username="support@acme.example")
    before = Mailbox.objects.get(pk=other.pk)
    response = staff_client.post(change_url(other), change_data(other, email="Sales@ACME.example", from_name="X"))
    shown = (
        errors_of(response) if response.status_code == 200 else page_messages(staff_client.get(response["Location"]))
    )
    assert "sales@acme.example" in str(shown).lower(), shown
    after = Mailbox.objects.get(pk=other.pk)
    assert (after.email, after.from_name, after.updated_at) == (before.email, before.from_name, before.updated_at)


def test_the_change_page_shows_a_taken_address_on_the_email_field(staff_client, owner, mailbox):
    other = MailboxFactory(account=owner, email="support@acme.example", smtp_username="support@acme.example")
    response = staff_client.post(change_url(other), change_data(other, email="Sales@ACME.example", from_name="X"))
    assert response.status_code == 200
    assert set(errors_of(response)) == {"email"}


# --- secrets on the change page ------------------------------------------------------------------------


def test_a_blank_password_field_keeps_the_stored_secret(staff_client, mailbox):
    response = staff_client.post(change_url(mailbox), change_data(mailbox, from_name="Acme Sales Team"))
    assert response.status_code == 302, errors_of(response)
    mailbox.refresh_from_db()
    assert mailbox.from_name == "Acme Sales Team"
    assert (mailbox.smtp_password, mailbox.imap_password) == (SMTP_SECRET, IMAP_SECRET)
    raw = stored_secrets(mailbox.pk)  # re-encrypted on save (Fernet's IV), still not the plain text
    assert raw["smtp_password"] and SMTP_SECRET not in raw["smtp_password"]
    assert raw["imap_password"] and IMAP_SECRET not in raw["imap_password"]


def test_a_filled_password_field_replaces_the_stored_secret(staff_client, mailbox):
    response = staff_client.post(
        change_url(mailbox), change_data(mailbox, new_smtp_password="rotated-smtp", new_imap_password="rotated-imap")
    )
    assert response.status_code == 302, errors_of(response)
    mailbox.refresh_from_db()
    assert (mailbox.smtp_password, mailbox.imap_password) == ("rotated-smtp", "rotated-imap")
    assert "rotated-smtp" not in stored_secrets(mailbox.pk)["smtp_password"]


def test_removing_the_imap_password_clears_only_it(staff_client, mailbox):
    response = staff_client.post(change_url(mailbox), change_data(mailbox, clear_imap_password="on"))
    assert response.status_code == 302, errors_of(response)
    mailbox.refresh_from_db()
    assert mailbox.imap_password == ""
    assert stored_secrets(mailbox.pk)["imap_password"] == ""
    assert mailbox.smtp_password == SMTP_SECRET
    assert not mailbox.imap_configured


# --- what the change page shows ------------------------------------------------------------------------


def test_change_page_shows_the_campaigns_using_it_its_usage_and_a_14_day_forecast(staff_client, owner, mailbox):
    outbound = CampaignFactory(account=owner, name="Q3 outbound")
    step = SequenceStepFactory(campaign=outbound, position=1)
    used = SmtpCredentialFactory(campaign=outbound, mailbox=mailbox)
    capped = SmtpCredentialFactory(
        campaign=CampaignFactory(account=owner, name="Partners"), mailbox=mailbox, campaign_daily_limit=10
    )
    journey = CampaignFactory(account=owner, name="Onboarding journey", kind=Campaign.Kind.JOURNEY)
    SmtpCredentialFactory(campaign=journey, mailbox=mailbox)
    SmtpCredentialFactory(campaign=CampaignFactory(account=owner, name="Elsewhere"))  # another mailbox's user
    for _ in range(3):
        enroll(outbound, "sent", credential=used)
    enroll(outbound, "bounced", credential=used)
    zone = limits.account_zone(owner)
    today = limits.local_day(zone, timezone.now())
    MailboxDay.objects.create(mailbox=mailbox, day=today, reserved=4, sent=3, bounced=1)
    tomorrow = limits.day_start(zone, today + datetime.timedelta(days=1)) + datetime.timedelta(hours=10)
    for _ in range(2):
        ScheduledSend.objects.create(
            campaign=outbound, enrollment=enroll(outbound), step=step, smtp_credential=used, send_at=tomorrow
        )

    response = staff_client.get(change_url(mailbox))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/admin/campaigns/campaign/{outbound.pk}/change/"' in html and "Q3 outbound" in html
    assert f'href="/admin/campaigns/campaign/{capped.campaign_id}/change/"' in html
    assert "at most 10 a day" in html
    assert f'href="/admin/journeys/journey/{journey.pk}/change/"' in html and "Onboarding journey" in html
    assert "Elsewhere" not in html
    assert "4 first messages sent today of 50 a day (46 left today)" in html
    assert "bounce rate 25.0% (1 of 4 messages)" in html
    forecast = html[html.index("<th>First messages / limit</th>") :]
    forecast = forecast[: forecast.index("</table>")]
    assert forecast.count("<tr><td>") == 14
    assert f"<tr><td>{today + datetime.timedelta(days=1)}</td><td>2</td><td>2 / 50</td></tr>" in forecast
    assert f"<tr><td>{today}</td><td>0</td><td>0 / 50</td></tr>" in forecast


def test_an_unused_mailbox_says_it_can_be_deleted(staff_client, mailbox):
    html = staff_client.get(change_url(mailbox)).content.decode()
    assert "None: the mailbox can be deleted." in html


def test_account_and_auth_kind_are_read_only_on_the_change_page(staff_client, owner, outsider, mailbox):
    response = staff_client.get(change_url(mailbox))
    form = response.context["adminform"].form
    assert not {"account", "auth_kind", "oauth_provider"} & set(form.fields)
    posted = staff_client.post(
        change_url(mailbox),
        change_data(mailbox, account=outsider.pk, auth_kind="oauth2", oauth_provider="google", from_name="Same"),
    )
    assert posted.status_code == 302, errors_of(posted)
    mailbox.refresh_from_db()
    assert (mailbox.account_id, mailbox.auth_kind, mailbox.oauth_provider) == (owner.pk, "password", "")
    assert mailbox.from_name == "Same"


# --- actions -------------------------------------------------------------------------------------------


def test_disable_action_disables_it_naming_the_operator_and_records_the_event(staff_client, owner, mailbox):
    credential = SmtpCredentialFactory(campaign=CampaignFactory(account=owner), mailbox=mailbox)
    response = staff_client.post(CHANGELIST, {"action": "disable_selected", "_selected_action": [str(mailbox.pk)]})
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.disabled_at is not None
    assert OPERATOR in mailbox.disabled_reason
    event = WebhookEvent.objects.get(account=owner, type="mailbox.disabled")
    assert event.data["id"] == str(mailbox.pk)
    assert event.data["campaign_ids"] == [str(credential.campaign_id)]
    assert OPERATOR in event.data["reason"]
    assert WebhookEvent.objects.filter(account=owner, type="smtp_credential.disabled").count() == 1
    assert "Disabled" in staff_client.get(change_url(mailbox)).content.decode()

    again = staff_client.post(CHANGELIST, {"action": "disable_selected", "_selected_action": [str(mailbox.pk)]})
    assert again.status_code == 302
    assert WebhookEvent.objects.filter(type="mailbox.disabled").count() == 1  # once


def test_reenable_action_clears_the_disabled_state(staff_client, owner, mailbox):
    staff_client.post(CHANGELIST, {"action": "disable_selected", "_selected_action": [str(mailbox.pk)]})
    response = staff_client.post(CHANGELIST, {"action": "reenable_selected", "_selected_action": [str(mailbox.pk)]})
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (mailbox.disabled_at, mailbox.disabled_reason) == (None, "")
    assert mailbox.is_enabled


# --- deleting ------------------------------------------------------------------------------------------


def test_deleting_a_mailbox_a_campaign_uses_is_refused(staff_client, owner, mailbox):
    campaign = CampaignFactory(account=owner, name="Still sending")
    credential = SmtpCredentialFactory(campaign=campaign, mailbox=mailbox, label="Still sending's sender")
    url = f"/admin/mailboxes/mailbox/{mailbox.pk}/delete/"
    page = staff_client.get(url)
    assert page.status_code == 200
    assert "Cannot delete mailbox" in page.content.decode()
    assert [str(p) for p in page.context["protected"]] == [f"SMTP credential: {credential}"], page.context["protected"]
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code in (200, 302, 403)  # the protected page again, or a refusal
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()
    bulk = staff_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [str(mailbox.pk)], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()


def test_deleting_an_unused_mailbox_works(staff_client, owner, mailbox):
    MailboxDay.objects.create(mailbox=mailbox, day=datetime.date(2026, 1, 5), reserved=1, sent=1)
    url = f"/admin/mailboxes/mailbox/{mailbox.pk}/delete/"
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Mailbox.objects.filter(pk=mailbox.pk).exists()
    assert not MailboxDay.objects.exists()


def test_bulk_deleting_unused_mailboxes_works(staff_client, owner, mailbox):
    other = MailboxFactory(account=owner)
    response = staff_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [str(mailbox.pk), str(other.pk)], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Mailbox.objects.exists()


# --- OAuth2 --------------------------------------------------------------------------------------------


def test_adding_an_oauth2_mailbox_takes_the_providers_servers(staff_client, owner, oauth_settings):
    response = staff_client.post(
        ADD,
        {
            "account": owner.pk,
            "auth_kind": "oauth2",
            "oauth_provider": "google",
            "email": "founder@acme.example",
            "from_name": "",
            "daily_limit": 100,
            "smtp_host": "",
            "smtp_port": "",
            "smtp_security": "",
            "smtp_username": "",
            "new_smtp_password": "",
            "imap_host": "",
            "imap_port": "",
            "imap_username": "",
            "new_imap_password": "",
        },
    )
    assert response.status_code == 302, errors_of(response)
    created = Mailbox.objects.get(email="founder@acme.example")
    google = oauth_settings.OAUTH_PROVIDERS["google"]
    assert (created.auth_kind, created.oauth_provider) == ("oauth2", "google")
    assert (created.smtp_host, created.smtp_username) == (google["smtp_host"], "founder@acme.example")
    assert (created.imap_host, created.imap_username) == (google["imap_host"], "founder@acme.example")
    assert created.smtp_password == "" and not created.is_ready


def test_connect_with_oauth2_redirects_to_the_providers_authorization_url(staff_client, owner, oauth_settings):
    mailbox = mailbox_create(
        account=owner, auth_kind="oauth2", oauth_provider="google", email="founder@acme.example", daily_limit=100
    )
    page = staff_client.get(change_url(mailbox)).content.decode()
    connect = f"/admin/mailboxes/mailbox/{mailbox.pk}/oauth/connect/"
    assert f'href="{connect}"' in page and "Connect with OAuth2" in page and "not connected yet" in page

    response = staff_client.get(connect)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "accounts.example.test", "/auth")
    query = parse_qs(location.query)
    assert query["client_id"] == ["client-id-for-tests"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"][0].endswith("/oauth/callback")
    assert query["state"][0]
    assert "client-SECRET-for-tests" not in response["Location"]
    mailbox.refresh_from_db()
    assert mailbox.oauth_code_verifier  # kept (encrypted) for the callback
    assert mailbox.oauth_code_verifier not in response["Location"]


def test_connect_with_oauth2_on_a_password_mailbox_goes_back_with_a_message(staff_client, mailbox):
    response = staff_client.get(f"/admin/mailboxes/mailbox/{mailbox.pk}/oauth/connect/", follow=True)
    assert response.redirect_chain[-1][0] == change_url(mailbox)
    assert any("password" in m for m in page_messages(response))


def test_deleting_an_account_takes_its_campaigns_and_the_mailboxes_they_use(staff_client, owner, mailbox):
    campaign = CampaignFactory(account=owner)
    SmtpCredentialFactory(campaign=campaign, mailbox=mailbox)
    url = f"/admin/accounts/account/{owner.pk}/delete/"

    assert staff_client.get(url).status_code == 200
    response = staff_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Mailbox.objects.filter(pk=mailbox.pk).exists()
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


def test_an_oauth2_mailbox_whose_token_was_refused_shows_its_page(staff_client, owner):
    mailbox = MailboxFactory(
        account=owner,
        auth_kind="oauth2",
        oauth_provider="google",
        smtp_password="",
        oauth_refresh_token="refresh-SECRET",
        oauth_connected_at=timezone.now(),
        oauth_token_expires_at=None,  # `mailbox_access_token_refused` after a 535
    )

    page = staff_client.get(f"/admin/mailboxes/mailbox/{mailbox.pk}/change/")

    assert page.status_code == 200
    assert "token refused by the server: refreshed at the next use" in page.content.decode()
    assert "refresh-SECRET" not in page.content.decode()
