"""OAuth2 mailboxes end to end, through the public surface, against real local servers.

An integrator creates a Google mailbox with the API, its owner grants access
in a browser (here: `requests` following the authorization URL of a real
local authorization server, then the Django test client on /oauth/callback),
and the workers send through an SMTP server that only speaks XOAUTH2 and poll
a Dovecot whose logins are bearer tokens. Nothing of ours is mocked: the tick
and the send worker are the functions the Celery tasks run, the poll is
`poll_imap_mailboxes_task` itself.
"""

# The server fixtures are imported from tests/servers; a test's parameter of the same name is the fixture.
# ruff: noqa: F811

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection
from django.test import Client, TestCase
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config.celery import app as celery_app
from enrollments.models import Enrollment
from inbound.tasks import poll_imap_mailboxes_task
from mailboxes.models import Mailbox
from mailing.claiming import sends_claim_due
from mailing.models import ScheduledSend
from mailing.tasks import send_chunk_task
from tests.inbound.mail import reply
from tests.servers.dovecot_oauth2 import dovecot_oauth2  # noqa: F401 (fixture)
from tests.servers.oauth_server import USER, oauth_server, provider_settings, s256  # noqa: F401 (fixtures)
from tests.servers.xoauth2_smtp import xoauth2_smtp  # noqa: F401 (fixture)
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

BASE_URL = "http://testserver"  # the Django test client's host: the callback is served where it says
CALLBACK = f"{BASE_URL}/oauth/callback"
LEAD = "lead@example.org"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def google(settings, oauth_server, xoauth2_smtp):
    """The "google" provider is the local authorization server, its SMTP the XOAUTH2 server.

    The authorization server accepts our redirect URI as Google does a registered one.
    """
    settings.PUBLIC_BASE_URL = BASE_URL
    settings.MAILING_ALLOW_PRIVATE_HOSTS = True  # every server here is on 127.0.0.1
    oauth_server.redirect_uris.add(CALLBACK)
    settings.OAUTH_PROVIDERS = {
        "google": provider_settings(oauth_server, label="Google", smtp_port=xoauth2_smtp.port),
        "microsoft": provider_settings(oauth_server, label="Microsoft", authorize_params={}),
    }
    return settings.OAUTH_PROVIDERS["google"]


@pytest.fixture
def google_with_imap(settings, google, dovecot_oauth2):
    """`google` whose IMAP is the Dovecot that checks bearer tokens with the authorization server."""
    google["imap_port"] = dovecot_oauth2.port
    return google


@pytest.fixture
def eager_tasks():
    """Run `.delay()` in process, as a worker would run the task it receives."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


class Surface:
    """The product as its users reach it: the API (an account's key) and a browser. Keeps every body answered."""

    def __init__(self, api) -> None:
        self.api = api
        self.browser = Client()
        self.bodies: list[bytes] = []

    def call(self, method: str, path: str, body: dict | None = None, *, client=None):
        client = client or self.api
        payload = {} if method == "get" else {"data": body or {}, "format": "json"}
        response = getattr(client, method)(path, **payload)
        self.bodies.append(response.content)
        return response

    # The OAuth2 connection, as an operator does it.

    def create_mailbox(self, **fields) -> dict:
        body = {
            "email": USER,
            "from_name": "Sam Sender",
            "auth_kind": "oauth2",
            "oauth_provider": "google",
            "smtp_security": "none",  # the local XOAUTH2 server speaks plain SMTP
            **fields,
        }
        response = self.call("post", "/api/mailboxes", body)
        assert response.status_code == 201, response.json()
        return response.json()

    def mailbox(self, mailbox_id: str) -> dict:
        response = self.call("get", f"/api/mailboxes/{mailbox_id}")
        assert response.status_code == 200, response.json()
        return response.json()

    def start(self, mailbox_id: str) -> str:
        response = self.call("post", f"/api/mailboxes/{mailbox_id}/oauth/start")
        assert response.status_code == 200, response.json()
        assert response.json()["redirect_uri"] == CALLBACK
        return response.json()["authorization_url"]

    def consent(self, authorization_url: str) -> dict[str, str]:
        """The browser at the provider: it approves and redirects back; the redirect's parameters."""
        answer = requests.get(authorization_url, allow_redirects=False, timeout=5)
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
        assert location.startswith(CALLBACK + "?"), location
        return query(location)

    def callback(self, params: dict[str, str]):
        response = self.browser.get("/oauth/callback", params)
        self.bodies.append(response.content)
        return response

    def connect(self, mailbox_id: str) -> None:
        response = self.callback(self.consent(self.start(mailbox_id)))
        assert response.status_code == 200, response.content.decode()
        assert "Mailbox connected" in response.content.decode()

    # A campaign through the mailbox, as an integrator sets it up.

    def campaign(self, mailbox_id: str, *, delays=(0,)) -> str:
        body = {
            "campaign": {
                "name": "OAuth2 outreach",
                "min_wait_seconds": 0,
                "max_wait_seconds": 0,
                "smtp_credentials": [{"mailbox_id": mailbox_id}],
                "sequence_steps": [
                    {
                        "position": position,
                        "subject": "Hi {{first_name}}" if position == 1 else "Re: Hi {{first_name}}",
                        "body_html": f"<p>Hello {{{{first_name}}}}, step {position}.</p>",
                        "delay_minutes": delay,
                    }
                    for position, delay in enumerate(delays, start=1)
                ],
            }
        }
        response = self.call("post", "/api/campaigns", body)
        assert response.status_code == 201, response.json()
        return response.json()["id"]

    def enroll(self, campaign_id: str, email: str = LEAD) -> Enrollment:
        contact = self.call("post", "/api/contacts", {"email": email, "first_name": "Ann"})
        assert contact.status_code == 201, contact.json()
        enrolled = self.call(
            "post", f"/api/campaigns/{campaign_id}/enroll_contact", {"contact_id": contact.json()["id"]}
        )
        assert enrolled.status_code == 201, enrolled.json()
        return Enrollment.objects.get(uuid=enrolled.json()["id"])

    def dispatch(self, campaign_id: str) -> None:
        response = self.call("post", f"/api/campaigns/{campaign_id}/dispatch", {})
        assert response.status_code == 200, response.json()


@pytest.fixture
def surface(api):
    return Surface(api)


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def tick_and_work(*, now: datetime.datetime | None = None) -> int:
    """One beat tick (claims what is due as of `now`), then the worker's task for every chunk; chunks sent."""
    chunks: list = []
    with TestCase.captureOnCommitCallbacks(execute=True):
        sends_claim_due(enqueue=lambda c, ids, token: chunks.append((c, ids, token)), now=now or timezone.now())
    for credential_id, ids, token in chunks:
        send_chunk_task(str(credential_id), [str(i) for i in ids], token)
    return len(chunks)


def stored(mailbox_id: str) -> Mailbox:
    return Mailbox.objects.get(pk=mailbox_id)


def make_stale(oauth_server, mailbox_id: str) -> None:
    """The access token has expired, at the provider and by the expiry we stored."""
    mailbox = stored(mailbox_id)
    oauth_server.expire(mailbox.oauth_access_token)
    Mailbox.objects.filter(pk=mailbox_id).update(oauth_token_expires_at=timezone.now() - datetime.timedelta(minutes=1))


def assert_no_secret_in(bodies: list[bytes], *secrets: str) -> None:
    for secret in secrets:
        assert secret
        assert not any(secret.encode() in body for body in bodies), "a token was answered"


# --- 1. connecting -------------------------------------------------------------------------------


def test_an_oauth2_mailbox_is_connected_through_the_api_and_the_callback(surface, google, oauth_server):
    created = surface.create_mailbox()
    assert created["auth_kind"] == "oauth2" and created["oauth_provider"] == "google"
    assert created["ready"] is False
    assert "connect" in created["not_ready_reason"].lower()
    assert created["oauth_connected_at"] is None and created["oauth_token_expires_at"] is None
    assert (created["smtp_host"], created["smtp_port"], created["smtp_username"]) == (
        "127.0.0.1",
        google["smtp_port"],
        USER,
    )
    mailbox_id = created["id"]

    url = surface.start(mailbox_id)
    assert url.startswith(oauth_server.authorization_url + "?")
    params = query(url)
    verifier = stored(mailbox_id).oauth_code_verifier
    assert params["code_challenge_method"] == "S256" and params["code_challenge"] == s256(verifier)
    assert params["redirect_uri"] == CALLBACK
    assert params["state"] and params["login_hint"] == USER
    back = surface.consent(url)
    assert back["state"] == params["state"] and back["code"]

    # A state that is not ours is refused, and does not use up the code.
    tampered = surface.callback(
        {**back, "state": back["state"][:-3] + ("AAA" if back["state"][-3:] != "AAA" else "BBB")}
    )
    assert tampered.status_code == 400
    assert "invalid or expired" in tampered.content.decode()
    assert stored(mailbox_id).oauth_refresh_token == ""

    before = timezone.now()
    connected = surface.callback(back)
    assert connected.status_code == 200
    assert "Mailbox connected" in connected.content.decode() and USER in connected.content.decode()

    shown = surface.mailbox(mailbox_id)
    assert shown["ready"] is True and shown["not_ready_reason"] is None
    assert parse_datetime(shown["oauth_connected_at"]) >= before
    expires = parse_datetime(shown["oauth_token_expires_at"])
    assert before + datetime.timedelta(minutes=55) < expires < before + datetime.timedelta(minutes=65)
    assert shown["oauth_revoked_at"] is None and shown["disabled_at"] is None

    # The same redirect again (a reload, or a stolen URL) is refused without touching the provider.
    exchanges = oauth_server.count("/token", grant_type="authorization_code")
    replayed = surface.callback(back)
    assert replayed.status_code == 400
    assert "already used" in replayed.content.decode()
    assert oauth_server.count("/token", grant_type="authorization_code") == exchanges == 1
    mailbox = stored(mailbox_id)
    assert oauth_server.introspect(mailbox.oauth_access_token)["active"] is True  # the grant survives the replay

    # Tokens are encrypted at rest.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oauth_refresh_token, oauth_access_token FROM mailboxes_mailbox WHERE id = %s", [mailbox_id]
        )
        raw_refresh, raw_access = cursor.fetchone()
    assert raw_refresh and mailbox.oauth_refresh_token not in raw_refresh
    assert raw_access and mailbox.oauth_access_token not in raw_access

    # The owner says no at the provider.
    oauth_server.consent = False
    denied = surface.callback(surface.consent(surface.start(mailbox_id)))
    assert denied.status_code == 400
    assert "Access was not granted" in denied.content.decode()
    assert surface.mailbox(mailbox_id)["ready"] is True  # still connected with the earlier grant

    listed = surface.call("get", "/api/mailboxes")
    assert listed.status_code == 200 and [m["id"] for m in listed.json()] == [mailbox_id]
    assert_no_secret_in(surface.bodies, mailbox.oauth_access_token, mailbox.oauth_refresh_token, verifier)


def test_another_account_cannot_start_connecting_the_mailbox(surface, google, outsider_api):
    mailbox_id = surface.create_mailbox()["id"]

    response = surface.call("post", f"/api/mailboxes/{mailbox_id}/oauth/start", client=outsider_api)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "mailbox_not_found"
    assert stored(mailbox_id).oauth_code_verifier == ""


def test_a_password_mailbox_cannot_start_an_oauth2_connection(surface, google):
    created = surface.call(
        "post",
        "/api/mailboxes",
        {
            "email": "pw@example.test",
            "smtp_host": "127.0.0.1",
            "smtp_port": 2525,
            "smtp_username": "pw@example.test",
            "smtp_password": "pw-SECRET",
        },
    )
    assert created.status_code == 201, created.json()

    response = surface.call("post", f"/api/mailboxes/{created.json()['id']}/oauth/start")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "mailbox_not_oauth2"


# --- 2. sending ----------------------------------------------------------------------------------


def test_a_campaign_sends_through_the_connected_mailbox_with_xoauth2(surface, google, oauth_server, xoauth2_smtp):
    mailbox_id = surface.create_mailbox()["id"]
    surface.connect(mailbox_id)
    campaign_id = surface.campaign(mailbox_id)
    enrollment = surface.enroll(campaign_id)
    surface.dispatch(campaign_id)

    assert tick_and_work() == 1

    assert xoauth2_smtp.authenticated == [USER]
    ((mail_from, recipients, message),) = xoauth2_smtp.messages
    assert mail_from == USER and recipients == [LEAD]
    assert message["From"] == f"Sam Sender <{USER}>" and message["Subject"] == "Hi Ann"
    send = ScheduledSend.objects.get(enrollment=enrollment)
    assert send.status == "sent" and message["Message-ID"] == send.message_id
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    assert oauth_server.refresh_count == 0  # the token from the grant was fresh
    shown = surface.mailbox(mailbox_id)
    assert shown["messages_sent"] == 1 and shown["sent_today"] == 1
    mailbox = stored(mailbox_id)
    assert_no_secret_in(surface.bodies, mailbox.oauth_access_token, mailbox.oauth_refresh_token)


# --- 3. refreshing -------------------------------------------------------------------------------


def test_an_expired_access_token_is_refreshed_once_and_the_send_goes_out(surface, google, oauth_server, xoauth2_smtp):
    mailbox_id = surface.create_mailbox()["id"]
    surface.connect(mailbox_id)
    campaign_id = surface.campaign(mailbox_id, delays=(0, 60, 60))
    surface.enroll(campaign_id)
    surface.dispatch(campaign_id)
    tick_and_work()
    assert len(xoauth2_smtp.messages) == 1 and oauth_server.refresh_count == 0
    old = stored(mailbox_id)
    make_stale(oauth_server, mailbox_id)

    before = timezone.now()
    tick_and_work(now=timezone.now() + datetime.timedelta(minutes=90))  # step 2 is due

    assert len(xoauth2_smtp.messages) == 2
    assert oauth_server.refresh_count == 1
    assert xoauth2_smtp.authenticated == [USER, USER]
    new = stored(mailbox_id)
    assert new.oauth_access_token != old.oauth_access_token
    assert new.oauth_refresh_token == old.oauth_refresh_token  # Google keeps it
    assert (
        before + datetime.timedelta(minutes=55) < new.oauth_token_expires_at < before + datetime.timedelta(minutes=65)
    )
    assert parse_datetime(surface.mailbox(mailbox_id)["oauth_token_expires_at"]) == new.oauth_token_expires_at

    # The refreshed token is the one stored: the next send uses it without another refresh.
    tick_and_work(now=timezone.now() + datetime.timedelta(minutes=150))  # step 3
    assert len(xoauth2_smtp.messages) == 3
    assert oauth_server.refresh_count == 1
    assert_no_secret_in(surface.bodies, old.oauth_access_token, new.oauth_access_token, new.oauth_refresh_token)


def test_a_token_refused_before_its_expiry_is_refreshed_on_the_retry(surface, google, oauth_server, xoauth2_smtp):
    mailbox_id = surface.create_mailbox()["id"]
    surface.connect(mailbox_id)
    campaign_id = surface.campaign(mailbox_id)
    enrollment = surface.enroll(campaign_id)
    surface.dispatch(campaign_id)
    oauth_server.expire(stored(mailbox_id).oauth_access_token)  # the provider dropped it; our expiry says fresh

    tick_and_work()  # refused with 535: retried later, nothing sent, the token marked for refresh
    assert xoauth2_smtp.messages == [] and oauth_server.refresh_count == 0
    send = enrollment.scheduled_sends.get()
    assert (send.status, send.attempts) == ("scheduled", 1) and "535" in send.last_error
    assert stored(mailbox_id).oauth_token_expires_at is None

    tick_and_work(now=send.send_at + datetime.timedelta(hours=2))  # the retry: one refresh, then the send
    assert len(xoauth2_smtp.messages) == 1 and oauth_server.refresh_count == 1
    assert stored(mailbox_id).disabled_at is None


# --- 4. polling for replies ----------------------------------------------------------------------


def test_a_reply_read_over_imap_with_xoauth2_marks_the_enrollment_replied(
    surface, google_with_imap, oauth_server, xoauth2_smtp, dovecot_oauth2, eager_tasks
):
    created = surface.create_mailbox()
    assert (created["imap_host"], created["imap_port"], created["imap_username"]) == (
        "127.0.0.1",
        dovecot_oauth2.port,
        USER,
    )
    mailbox_id = created["id"]
    surface.connect(mailbox_id)
    assert surface.mailbox(mailbox_id)["imap_configured"] is True
    campaign_id = surface.campaign(mailbox_id)
    enrollment = surface.enroll(campaign_id)
    surface.dispatch(campaign_id)
    tick_and_work()
    sent = ScheduledSend.objects.get(enrollment=enrollment)
    assert sent.status == "sent"

    dovecot_oauth2.deliver(reply(LEAD, in_reply_to=sent.message_id, references=sent.message_id), user=USER)
    assert poll_imap_mailboxes_task() == 1

    enrollment.refresh_from_db()
    assert enrollment.status == "replied"
    shown = surface.mailbox(mailbox_id)
    assert shown["imap_status"] == "ok" and shown["imap_last_error"] is None
    assert oauth_server.refresh_count == 0


def test_a_poll_logs_in_to_imap_with_the_grant_and_a_refreshed_token(
    surface, google_with_imap, oauth_server, dovecot_oauth2, eager_tasks
):
    """An empty INBOX: the poll signs in with a token it refreshed first, which Dovecot checks with the provider."""
    mailbox_id = surface.create_mailbox()["id"]
    surface.connect(mailbox_id)
    surface.campaign(mailbox_id)  # a mailbox is polled when something sends through it
    make_stale(oauth_server, mailbox_id)

    assert poll_imap_mailboxes_task() == 1

    shown = surface.mailbox(mailbox_id)
    assert shown["imap_status"] == "ok", shown["imap_last_error"]
    assert oauth_server.refresh_count == 1
    assert oauth_server.count("/introspect") >= 1  # Dovecot asked the authorization server about the token


def test_a_poll_that_finds_the_grant_revoked_disables_the_mailbox(
    surface, google_with_imap, oauth_server, dovecot_oauth2, eager_tasks
):
    mailbox_id = surface.create_mailbox()["id"]
    surface.connect(mailbox_id)
    surface.campaign(mailbox_id)
    oauth_server.revoke(stored(mailbox_id).oauth_refresh_token)
    make_stale(oauth_server, mailbox_id)

    assert poll_imap_mailboxes_task() == 1

    shown = surface.mailbox(mailbox_id)
    assert shown["disabled_at"] is not None and shown["oauth_revoked_at"] is not None
    assert "Reconnect" in shown["disabled_reason"]
    assert shown["imap_status"] == "failing" and "revoked" in shown["imap_last_error"]
    assert WebhookEvent.objects.filter(type="mailbox.disabled", data__id=mailbox_id).count() == 1


# --- 5. revoked consent --------------------------------------------------------------------------


def test_a_revoked_grant_disables_the_mailbox_the_send_waits_and_goes_out_after_reconnecting(
    surface, google, oauth_server, xoauth2_smtp
):
    mailbox_id = surface.create_mailbox()["id"]
    surface.connect(mailbox_id)
    campaign_id = surface.campaign(mailbox_id)
    enrollment = surface.enroll(campaign_id)
    surface.dispatch(campaign_id)
    revoked = stored(mailbox_id)
    oauth_server.revoke(revoked.oauth_refresh_token)  # the owner removed the app's access
    make_stale(oauth_server, mailbox_id)

    tick_and_work()

    assert oauth_server.refresh_count == 1
    assert xoauth2_smtp.messages == [] and xoauth2_smtp.authenticated == []
    shown = surface.mailbox(mailbox_id)
    assert shown["disabled_at"] is not None and shown["oauth_revoked_at"] is not None
    assert "Reconnect the mailbox" in shown["disabled_reason"]
    assert "oauth/start" in shown["disabled_reason"]
    send = ScheduledSend.objects.get(enrollment=enrollment)
    assert (send.status, send.attempts, send.sent_at) == ("scheduled", 1, None)
    assert "revoked" in send.last_error
    enrollment.refresh_from_db()
    assert enrollment.status == "pending"
    event = WebhookEvent.objects.get(type="mailbox.disabled")
    assert event.data["id"] == mailbox_id and event.data["reason"] == shown["disabled_reason"]
    assert event.data["campaign_ids"] == [campaign_id]
    assert WebhookEvent.objects.filter(type="smtp_credential.disabled", data__mailbox_id=mailbox_id).count() == 1

    # While disabled, the send waits: the tick does not hand it to a worker, and nothing refreshes.
    later = timezone.now() + datetime.timedelta(days=1)
    assert tick_and_work(now=later) == 0
    send.refresh_from_db()
    assert (send.status, send.attempts) == ("scheduled", 1)
    assert oauth_server.refresh_count == 1

    surface.connect(mailbox_id)

    shown = surface.mailbox(mailbox_id)
    assert shown["disabled_at"] is None and shown["disabled_reason"] == ""
    assert shown["oauth_revoked_at"] is None and shown["ready"] is True
    assert tick_and_work(now=later) == 1
    ((mail_from, recipients, _),) = xoauth2_smtp.messages
    assert (mail_from, recipients) == (USER, [LEAD])
    assert xoauth2_smtp.authenticated == [USER]
    send.refresh_from_db()
    assert send.status == "sent"
    enrollment.refresh_from_db()
    assert enrollment.status == "sent"
    reconnected = stored(mailbox_id)
    assert reconnected.oauth_refresh_token != revoked.oauth_refresh_token
    assert_no_secret_in(
        surface.bodies, revoked.oauth_access_token, revoked.oauth_refresh_token, reconnected.oauth_refresh_token
    )


def test_access_granted_by_another_account_than_the_mailboxs_is_refused(surface, google, oauth_server):
    mailbox_id = surface.create_mailbox()["id"]
    oauth_server.signed_in_as = "someone.else@example.test"  # the user picked another account at Google

    response = surface.callback(surface.consent(surface.start(mailbox_id)))

    assert response.status_code == 400
    page = response.content.decode()
    assert "Access was granted for someone.else@example.test" in page and f"sign in as {USER}" in page
    shown = surface.mailbox(mailbox_id)
    assert (shown["ready"], shown["oauth_connected_at"]) == (False, None)
    assert stored(mailbox_id).oauth_refresh_token == ""


@pytest.mark.django_db
def test_a_mailbox_whose_grant_is_known_revoked_is_not_polled_until_reconnected(owner):
    from inbound.imap import mailboxes_due_for_poll
    from tests.campaigns.factories import CampaignFactory, SmtpCredentialFactory
    from tests.mailboxes.factories import MailboxFactory

    mailbox = MailboxFactory(
        account=owner,
        auth_kind="oauth2",
        oauth_provider="google",
        smtp_password="",
        oauth_refresh_token="refresh",
        imap_host="imap.example.test",
        imap_username=USER,
    )
    SmtpCredentialFactory(campaign=CampaignFactory(account=owner), mailbox=mailbox)
    assert list(mailboxes_due_for_poll()) == [mailbox]

    Mailbox.objects.filter(pk=mailbox.pk).update(oauth_revoked_at=timezone.now())

    assert list(mailboxes_due_for_poll()) == []
