"""mailboxes.oauth against real local servers: an authorization server, an XOAUTH2 SMTP server, Dovecot."""

# The server fixtures are imported from tests/servers; a test's parameter of the same name is the fixture.
# ruff: noqa: F811

import datetime
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mailboxes import oauth
from tests.mailing.smtp_server import SmtpServer
from tests.servers.dovecot_oauth2 import dovecot_oauth2  # noqa: F401 (fixture)
from tests.servers.oauth_server import REDIRECT_URI, oauth_providers, oauth_server, s256  # noqa: F401 (fixtures)
from tests.servers.xoauth2_smtp import XOAuth2SmtpServer, xoauth2_smtp  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("oauth_providers")


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def consent(provider: str = "google", *, state: str = "state-123", login_hint: str = "") -> tuple[dict, str]:
    """Run the browser's part: follow the authorization URL, return the redirect's parameters and the verifier."""
    url, verifier = oauth.authorization_request(provider, redirect_uri=REDIRECT_URI, state=state, login_hint=login_hint)
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return query(location), verifier


def connect(provider: str = "google", **kwargs) -> oauth.Token:
    params, verifier = consent(provider, **kwargs)
    return oauth.exchange_code(provider, code=params["code"], code_verifier=verifier, redirect_uri=REDIRECT_URI)


def message(sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "lead@example.org", "Hello over XOAUTH2"
    msg.set_content("Body.")
    return msg


# --- the authorization request -----------------------------------------------------------


def test_authorization_url_carries_client_redirect_state_and_an_s256_challenge(oauth_server):
    url, verifier = oauth.authorization_request("google", redirect_uri=REDIRECT_URI, state="xyz")

    assert url.startswith(oauth_server.authorization_url + "?")
    params = query(url)
    assert params["client_id"] == oauth_server.client_id
    assert params["redirect_uri"] == REDIRECT_URI
    assert params["state"] == "xyz"
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] == s256(verifier)
    assert params["scope"] == "openid email https://mail.google.com/"
    assert params["access_type"] == "offline" and params["prompt"] == "consent"
    assert len(verifier) == 48
    assert oauth.authorization_request("google", redirect_uri=REDIRECT_URI, state="xyz")[1] != verifier


def test_default_settings_point_at_google_and_microsoft_with_offline_access(settings):
    from config import settings as defaults

    settings.OAUTH_PROVIDERS = {
        name: {**conf, "client_id": f"{name}-id"} for name, conf in defaults.OAUTH_PROVIDERS.items()
    }

    google, _ = oauth.authorization_request("google", redirect_uri=REDIRECT_URI, state="s", login_hint="a@b.test")
    assert google.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    params = query(google)
    assert params["scope"] == "openid email https://mail.google.com/"
    assert (params["access_type"], params["prompt"], params["login_hint"]) == ("offline", "consent", "a@b.test")

    microsoft, _ = oauth.authorization_request("microsoft", redirect_uri=REDIRECT_URI, state="s")
    assert microsoft.startswith("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?")
    assert query(microsoft)["scope"].split() == [
        "openid",
        "email",
        "offline_access",
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
    ]
    assert oauth.provider("microsoft").token_url == "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert (oauth.provider("microsoft").smtp_host, oauth.provider("microsoft").imap_port) == ("smtp.office365.com", 993)


def test_a_provider_without_client_id_is_not_configured(settings):
    settings.OAUTH_PROVIDERS = {**settings.OAUTH_PROVIDERS, "google": {**settings.OAUTH_PROVIDERS["google"]}}
    settings.OAUTH_PROVIDERS["google"]["client_id"] = ""

    with pytest.raises(oauth.OAuthNotConfigured):
        oauth.authorization_request("google", redirect_uri=REDIRECT_URI, state="s")
    with pytest.raises(oauth.OAuthNotConfigured):
        oauth.provider("yahoo")


# --- code exchange -----------------------------------------------------------------------


def test_a_code_exchanged_with_its_verifier_yields_a_token(oauth_server):
    params, verifier = consent(state="back-to-us")
    assert params["state"] == "back-to-us"

    before = datetime.datetime.now(datetime.UTC)
    token = oauth.exchange_code("google", code=params["code"], code_verifier=verifier, redirect_uri=REDIRECT_URI)

    assert token.access_token and token.refresh_token
    assert before + datetime.timedelta(seconds=3590) < token.expires_at < before + datetime.timedelta(seconds=3610)
    assert oauth_server.introspect(token.access_token)["username"] == oauth_server.user
    exchange = next(r for r in oauth_server.requests if r.path == "/token")
    assert exchange.params["code_verifier"] == verifier
    assert exchange.params["client_secret"] == oauth_server.client_secret  # client_secret_post


def test_the_login_hint_picks_the_account_that_consents(oauth_server):
    token = connect(login_hint="other@example.test")

    assert oauth_server.introspect(token.access_token)["username"] == "other@example.test"


def test_a_code_exchanged_with_a_wrong_verifier_is_rejected(oauth_server):
    params, _ = consent()

    with pytest.raises(oauth.OAuthRejected) as caught:
        oauth.exchange_code("google", code=params["code"], code_verifier="x" * 48, redirect_uri=REDIRECT_URI)

    assert caught.value.error == "invalid_grant"
    assert not isinstance(caught.value, oauth.OAuthRevoked)


def test_a_code_is_good_for_one_exchange(oauth_server):
    params, verifier = consent()
    token = oauth.exchange_code("google", code=params["code"], code_verifier=verifier, redirect_uri=REDIRECT_URI)

    with pytest.raises(oauth.OAuthRejected, match="invalid_grant"):
        oauth.exchange_code("google", code=params["code"], code_verifier=verifier, redirect_uri=REDIRECT_URI)
    assert oauth_server.introspect(token.access_token) == {"active": False}  # a replay revokes the grant


def test_a_denied_consent_comes_back_as_an_error(oauth_server):
    oauth_server.consent = False

    params, _ = consent(state="s1")

    assert params == {"error": "access_denied", "error_description": "The user denied access.", "state": "s1"}


# --- refresh -----------------------------------------------------------------------------


def test_refresh_returns_a_new_access_token_and_keeps_the_refresh_token(oauth_server):
    token = connect()
    oauth_server.expire(token.access_token)

    fresh = oauth.refresh_access_token("google", refresh_token=token.refresh_token)

    assert oauth_server.refresh_count == 1
    assert fresh.access_token != token.access_token
    assert fresh.refresh_token == token.refresh_token  # Google does not rotate it
    assert fresh.expires_at > datetime.datetime.now(datetime.UTC)
    assert oauth_server.introspect(fresh.access_token)["active"] is True


def test_refresh_takes_a_rotated_refresh_token(oauth_server):
    oauth_server.rotate_refresh_tokens = True  # as Microsoft does
    token = connect("microsoft")

    fresh = oauth.refresh_access_token("microsoft", refresh_token=token.refresh_token)

    assert fresh.refresh_token != token.refresh_token
    assert oauth.refresh_access_token("microsoft", refresh_token=fresh.refresh_token).access_token
    with pytest.raises(oauth.OAuthRevoked):
        oauth.refresh_access_token("microsoft", refresh_token=token.refresh_token)


def test_refresh_of_a_revoked_grant_says_to_reconnect(oauth_server):
    token = connect()
    oauth_server.revoke(token.refresh_token)

    with pytest.raises(oauth.OAuthRevoked) as caught:
        oauth.refresh_access_token("google", refresh_token=token.refresh_token)

    assert caught.value.error == "invalid_grant"
    assert "Reconnect the mailbox" in caught.value.reason
    assert "Google" in caught.value.reason and "revoked" in caught.value.reason


def test_refresh_refused_with_a_bare_400_is_revoked_too(oauth_server):
    oauth_server.fail_status = 400

    with pytest.raises(oauth.OAuthRevoked) as caught:
        oauth.refresh_access_token("google", refresh_token="whatever")

    assert caught.value.error == "http_400"


def test_refresh_refused_with_a_bare_401_is_the_clients_trouble_not_a_revoked_grant(oauth_server):
    oauth_server.fail_status = 401

    with pytest.raises(oauth.OAuthUnavailable, match="401"):
        oauth.refresh_access_token("google", refresh_token="whatever")


def test_a_refused_client_secret_leaves_the_grant_alone(oauth_server, settings):
    token = oauth_server.issue()
    settings.OAUTH_PROVIDERS["google"]["client_secret"] = "an-expired-secret"

    with pytest.raises(oauth.OAuthUnavailable, match=r"invalid_client.*client id and secret"):
        oauth.refresh_access_token("google", refresh_token=token["refresh_token"])


def test_refresh_with_the_authorization_server_down_is_unavailable(oauth_server):
    token = oauth_server.issue()
    oauth_server.stop()

    with pytest.raises(oauth.OAuthUnavailable):
        oauth.refresh_access_token("google", refresh_token=token["refresh_token"])


@pytest.mark.parametrize("status", [500, 503, 429])
def test_refresh_answered_with_a_server_error_or_rate_limit_is_unavailable(oauth_server, status):
    oauth_server.fail_status = status

    with pytest.raises(oauth.OAuthUnavailable, match=str(status)):
        oauth.refresh_access_token("google", refresh_token="whatever")


def test_refresh_that_does_not_answer_in_time_is_unavailable(oauth_server, settings):
    settings.OAUTH_HTTP_TIMEOUT_SECONDS = 0.2
    oauth_server.delay = 1.0
    token = oauth_server.issue()

    with pytest.raises(oauth.OAuthUnavailable, match="in time"):
        oauth.refresh_access_token("google", refresh_token=token["refresh_token"])


def test_needs_refresh_within_the_margin(settings):
    settings.OAUTH_REFRESH_MARGIN_SECONDS = 300
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

    assert oauth.needs_refresh(now + datetime.timedelta(seconds=299), now=now)
    assert not oauth.needs_refresh(now + datetime.timedelta(seconds=301), now=now)
    assert oauth.needs_refresh(None)


# --- SMTP --------------------------------------------------------------------------------


def test_xoauth2_string_is_the_raw_sasl_response():
    assert oauth.xoauth2_string("a@b.test", "tok") == "user=a@b.test\x01auth=Bearer tok\x01\x01"


def test_smtp_authenticates_with_xoauth2_and_delivers(oauth_server, xoauth2_smtp):
    token = connect()

    with smtplib.SMTP("127.0.0.1", xoauth2_smtp.port, timeout=10) as smtp:
        code, _ = oauth.smtp_xoauth2_auth(smtp, oauth_server.user, token.access_token)
        smtp.send_message(message(oauth_server.user))

    assert code == 235
    assert xoauth2_smtp.authenticated == [oauth_server.user]
    assert xoauth2_smtp.recipients() == ["lead@example.org"]
    assert xoauth2_smtp.messages[0][2]["Subject"] == "Hello over XOAUTH2"


def test_smtp_xoauth2_after_starttls(oauth_server):
    server = XOAuth2SmtpServer(oauth_server, tls=True).start()
    try:
        token = oauth_server.issue()
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            smtp.ehlo()
            assert "XOAUTH2" not in smtp.esmtp_features.get("auth", "")  # not before TLS
            smtp.starttls(context=server.client_context())
            smtp.ehlo()
            oauth.smtp_xoauth2_auth(smtp, oauth_server.user, token["access_token"])
            smtp.send_message(message(oauth_server.user))
        assert server.recipients() == ["lead@example.org"]
    finally:
        server.stop()


def test_smtp_refuses_a_stale_token_with_the_error_challenge(oauth_server, xoauth2_smtp):
    token = connect()
    oauth_server.expire(token.access_token)

    with smtplib.SMTP("127.0.0.1", xoauth2_smtp.port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            oauth.smtp_xoauth2_auth(smtp, oauth_server.user, token.access_token)
        assert smtp.noop()[0] == 250  # the SASL exchange ended cleanly: the session is usable
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.send_message(message(oauth_server.user))

    assert caught.value.smtp_code == 535
    assert b'"status": "401"' in caught.value.smtp_error
    assert refused.value.smtp_code == 530
    assert xoauth2_smtp.messages == []


def test_smtp_refuses_a_token_of_another_user(oauth_server, xoauth2_smtp):
    token = oauth_server.issue("someone-else@example.test")

    with (
        smtplib.SMTP("127.0.0.1", xoauth2_smtp.port, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        oauth.smtp_xoauth2_auth(smtp, oauth_server.user, token["access_token"])


def test_a_refreshed_token_authenticates_where_the_expired_one_did_not(oauth_server, xoauth2_smtp):
    token = connect()
    oauth_server.expire(token.access_token)
    fresh = oauth.refresh_access_token("google", refresh_token=token.refresh_token)

    with smtplib.SMTP("127.0.0.1", xoauth2_smtp.port, timeout=10) as smtp:
        assert oauth.smtp_xoauth2_auth(smtp, oauth_server.user, fresh.access_token)[0] == 235


def test_smtp_without_xoauth2_is_not_supported():
    server = SmtpServer().start()  # offers LOGIN and PLAIN only
    try:
        with (
            smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp,
            pytest.raises(smtplib.SMTPNotSupportedError),
        ):
            oauth.smtp_xoauth2_auth(smtp, "a@b.test", "token")
    finally:
        server.stop()


# --- IMAP --------------------------------------------------------------------------------


def imap(server) -> IMAPClient:
    context = ssl.create_default_context(cafile=str(server.cert))
    return IMAPClient("127.0.0.1", port=server.port, ssl=True, ssl_context=context, timeout=10)


def test_imap_logs_in_with_a_fresh_token(oauth_server, dovecot_oauth2):
    token = connect()
    dovecot_oauth2.deliver(b"From: lead@example.org\r\nSubject: Re: hello\r\n\r\nThanks!\r\n")

    client = imap(dovecot_oauth2)
    try:
        client.oauth2_login(oauth_server.user, token.access_token)
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1
    finally:
        client.logout()
    assert oauth_server.count("/introspect", token=token.access_token) == 1


def test_imap_logs_in_with_oauthbearer_too(oauth_server, dovecot_oauth2):
    token = oauth_server.issue()

    client = imap(dovecot_oauth2)
    try:
        client.oauthbearer_login(oauth_server.user, token["access_token"])
    finally:
        client.logout()


@pytest.mark.parametrize("how", ["revoked", "expired", "another user's"])
def test_imap_refuses_a_token_that_is_no_longer_good(oauth_server, dovecot_oauth2, how):
    token = oauth_server.issue("someone-else@example.test" if how == "another user's" else None)
    if how == "revoked":
        oauth_server.revoke(token["refresh_token"])
    elif how == "expired":
        oauth_server.expire(token["access_token"])

    client = imap(dovecot_oauth2)
    try:
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            client.oauth2_login(oauth_server.user, token["access_token"])
    finally:
        client.shutdown()


def test_the_code_exchange_says_which_account_granted_access(oauth_server):
    oauth_server.signed_in_as = "picked@example.test"

    token = connect(login_hint="hinted@example.test")

    assert token.account == "picked@example.test"
    assert oauth.granted_account("not-a-jwt") == ""
