"""OAuth2 for Google and Microsoft mailboxes: the authorization-code flow with PKCE, refresh, XOAUTH2.

A plain protocol module (no models): Authlib's requests client speaks to the
provider's endpoints, which come from `settings.OAUTH_PROVIDERS` (tests point
them at a local authorization server). The caller keeps the refresh token
encrypted and refreshes the access token when `needs_refresh` says so.

Failures are two kinds, because the caller treats them differently:

- `OAuthRevoked` (an `OAuthRejected`): the token endpoint refused a refresh
  (`invalid_grant`, or any other 400/401 answer). Consent was revoked or the
  grant expired: retrying will not help, the mailbox must be reconnected, and
  `reason` says so to the operator.
- `OAuthUnavailable`: network error, timeout, 408/429/5xx, or an answer that
  is not a token. Transient: retry later with the refresh token kept.

XOAUTH2 (Google's SASL mechanism, also Microsoft's) sends
`user=<address>^Aauth=Bearer <token>^A^A`, base64-encoded by the SASL client:
`smtplib.SMTP.auth` and `imaplib`/imapclient encode what the callback
returns, so `xoauth2_string` is the raw string. For IMAP use imapclient's
own `IMAPClient.oauth2_login(user, access_token)`; for SMTP use
`smtp_xoauth2_auth`.
"""

from __future__ import annotations

import base64
import datetime
import json
import smtplib
from dataclasses import dataclass, field

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings

PROVIDERS = ("google", "microsoft")

# When a token response omits `expires_in` (RFC 6749 §5.1 only recommends it), assume
# the hour that both Google and Microsoft give; refreshing early costs one request.
DEFAULT_EXPIRES_IN = 3600

# Answers of the token endpoint that mean "not now" rather than "never".
_TRANSIENT_STATUS = frozenset({408, 429})
_TRANSIENT_ERRORS = frozenset({"server_error", "temporarily_unavailable"})
# The client's own refusals (RFC 6749 §5.2): the server's configuration, not the mailbox's grant.
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client", "unsupported_grant_type"})


class OAuthFailure(Exception):
    """Base of this module's errors; `str()` is a sentence for an operator."""


class OAuthNotConfigured(OAuthFailure):
    """The provider is unknown, or this deployment has no client id for it."""


class OAuthUnavailable(OAuthFailure):
    """The token endpoint could not be reached or answered a transient error: retry later."""


class OAuthRejected(OAuthFailure):
    """The token endpoint refused the grant (an RFC 6749 error answer): retrying will not help."""

    def __init__(self, reason: str, *, error: str = "", description: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.description = description


class OAuthRevoked(OAuthRejected):
    """A refresh was refused: consent was revoked or the grant expired; the mailbox must be reconnected."""


@dataclass(frozen=True)
class Provider:
    """One provider's endpoints and client, as `settings.OAUTH_PROVIDERS[name]` describes it."""

    name: str
    label: str
    client_id: str
    client_secret: str = field(repr=False)
    authorization_url: str
    token_url: str
    scopes: tuple[str, ...]
    smtp_host: str
    smtp_port: int
    imap_host: str
    imap_port: int
    authorize_params: dict = field(default_factory=dict)


@dataclass
class Token:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime.datetime
    account: str = ""  # who granted it (the ID token's email), when the provider said; "" otherwise


def granted_account(id_token: str) -> str:
    """The address an OpenID Connect ID token names (`email`, else Microsoft's `preferred_username`), or "".

    The token comes straight from the token endpoint over TLS, so its signature need not be checked
    (OpenID Connect Core 3.1.3.7, item 6); a token that cannot be read names nobody.
    """
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return ""
    if not isinstance(claims, dict):
        return ""
    return str(claims.get("email") or claims.get("preferred_username") or "").strip()


def provider(name: str) -> Provider:
    """The settings of provider `name`. Raises `OAuthNotConfigured` if unknown or without a client id."""
    if name not in PROVIDERS or name not in settings.OAUTH_PROVIDERS:
        raise OAuthNotConfigured(f"Unknown OAuth2 provider {name!r}.")
    conf = settings.OAUTH_PROVIDERS[name]
    if not conf.get("client_id"):
        raise OAuthNotConfigured(f"{conf.get('label', name)} sign-in is not configured on this server (no client id).")
    scopes = conf["scopes"]
    return Provider(
        name=name,
        label=conf.get("label", name),
        client_id=conf["client_id"],
        client_secret=conf.get("client_secret", ""),
        authorization_url=conf["authorization_url"],
        token_url=conf["token_url"],
        scopes=tuple(scopes.split() if isinstance(scopes, str) else scopes),
        smtp_host=conf["smtp_host"],
        smtp_port=int(conf["smtp_port"]),
        imap_host=conf["imap_host"],
        imap_port=int(conf["imap_port"]),
        authorize_params=dict(conf.get("authorize_params") or {}),
    )


def _session(conf: Provider, *, redirect_uri: str | None = None) -> OAuth2Session:
    session = OAuth2Session(
        conf.client_id,
        conf.client_secret or None,
        # The body carries the secret as both providers document it; Basic would need the id and
        # secret form-encoded first (RFC 6749 §2.3.1), which servers do not all agree on.
        token_endpoint_auth_method="client_secret_post" if conf.client_secret else "none",
        scope=" ".join(conf.scopes),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    # Classify the HTTP answer before Authlib parses it: a 5xx or a rate limit is transient
    # whatever its body says.
    session.register_compliance_hook("access_token_response", _screen_response)
    session.register_compliance_hook("refresh_token_response", _screen_response)
    return session


def _screen_response(response: requests.Response) -> requests.Response:
    if response.status_code >= 500 or response.status_code in _TRANSIENT_STATUS:
        raise OAuthUnavailable(f"The token endpoint answered HTTP {response.status_code}; will retry.")
    return response


def authorization_request(
    provider_name: str, *, redirect_uri: str, state: str, login_hint: str = ""
) -> tuple[str, str]:
    """Where to send the operator to grant access: (authorization URL, PKCE code verifier).

    Keep the verifier (server side, e.g. in the session, with `state`) for `exchange_code`.
    `login_hint` preselects the account at the provider. Raises `OAuthNotConfigured`.
    """
    conf = provider(provider_name)
    code_verifier = generate_token(48)  # RFC 7636 §4.1: 43 to 128 unreserved characters
    extra = dict(conf.authorize_params)
    if login_hint:
        extra["login_hint"] = login_hint
    with _session(conf, redirect_uri=redirect_uri) as session:
        url, _ = session.create_authorization_url(
            conf.authorization_url, state=state, code_verifier=code_verifier, **extra
        )
    return url, code_verifier


def exchange_code(provider_name: str, *, code: str, code_verifier: str, redirect_uri: str) -> Token:
    """Trade the authorization code from the redirect for tokens.

    Raises `OAuthRejected` (bad or used code, wrong verifier, client refused),
    `OAuthUnavailable`, `OAuthNotConfigured`. A grant without a refresh token
    is rejected: the mailbox could not be used after the first hour.
    """
    conf = provider(provider_name)
    with _session(conf, redirect_uri=redirect_uri) as session:
        answer = _call(
            conf,
            lambda: session.fetch_token(
                conf.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                timeout=settings.OAUTH_HTTP_TIMEOUT_SECONDS,
            ),
            refused=OAuthRejected,
        )
    if not answer.get("refresh_token"):
        raise OAuthRejected(
            f"{conf.label} granted access without a refresh token; remove the app's access in the "
            f"{conf.label} account settings and connect again.",
            error="no_refresh_token",
        )
    token = _token(answer, refresh_token=answer["refresh_token"])
    token.account = granted_account(answer.get("id_token") or "")
    return token


def refresh_access_token(provider_name: str, *, refresh_token: str) -> Token:
    """A new access token for `refresh_token`; the same refresh token unless the server rotated it.

    Raises `OAuthRevoked` (disable the mailbox with `reason`), `OAuthUnavailable`
    (retry later), `OAuthNotConfigured`.
    """
    conf = provider(provider_name)
    with _session(conf) as session:
        answer = _call(
            conf,
            lambda: session.refresh_token(
                conf.token_url, refresh_token=refresh_token, timeout=settings.OAUTH_HTTP_TIMEOUT_SECONDS
            ),
            refused=OAuthRevoked,
        )
    return _token(answer, refresh_token=answer.get("refresh_token") or refresh_token)


def needs_refresh(expires_at: datetime.datetime | None, *, now: datetime.datetime | None = None) -> bool:
    """True when an access token expiring at `expires_at` is within `OAUTH_REFRESH_MARGIN_SECONDS` of it."""
    if expires_at is None:
        return True
    now = now or datetime.datetime.now(datetime.UTC)
    return expires_at - now <= datetime.timedelta(seconds=settings.OAUTH_REFRESH_MARGIN_SECONDS)


def _call(conf: Provider, request, *, refused: type[OAuthRejected]) -> dict:
    try:
        return request()
    except OAuthError as exc:  # an RFC 6749 §5.2 JSON error answer (4xx)
        error, description = exc.error or "", exc.description or ""
        if error in _TRANSIENT_ERRORS:
            raise OAuthUnavailable(f"{conf.label} is temporarily unavailable ({error}); will retry.") from exc
        if refused is OAuthRevoked and error in _CLIENT_ERRORS:
            # Our client was refused (an expired secret, say), not the mailbox's grant: disabling every
            # mailbox of the provider would not help, and reconnecting would fail the same way.
            raise OAuthUnavailable(
                f"{conf.label} refused this server's OAuth client ({error}): check its client id and secret "
                "in the settings; will retry."
            ) from exc
        raise refused(_refusal(conf, refused, error, description), error=error, description=description) from exc
    except requests.HTTPError as exc:  # a 4xx whose body is not JSON (the 5xx were screened)
        status = exc.response.status_code if exc.response is not None else 0
        if status == 400 or (status == 401 and refused is not OAuthRevoked):
            raise refused(_refusal(conf, refused, f"HTTP {status}", ""), error=f"http_{status}") from exc
        raise OAuthUnavailable(f"The {conf.label} token endpoint answered HTTP {status}; will retry.") from exc
    except requests.Timeout as exc:
        raise OAuthUnavailable(f"The {conf.label} token endpoint did not answer in time; will retry.") from exc
    except requests.RequestException as exc:
        raise OAuthUnavailable(f"Could not reach the {conf.label} token endpoint ({type(exc).__name__}).") from exc
    except ValueError as exc:  # a 2xx that is not a JSON object
        raise OAuthUnavailable(f"The {conf.label} token endpoint answered something else than a token.") from exc


def _refusal(conf: Provider, refused: type[OAuthRejected], error: str, description: str) -> str:
    detail = f"{error}: {description}" if description else error
    if refused is OAuthRevoked:
        return (
            f"{conf.label} refused to renew access ({detail}): access was revoked or has expired. "
            "Reconnect the mailbox to grant access again."
        )[:1000]
    return f"{conf.label} refused the sign-in ({detail}). Try connecting again."[:1000]


def _token(answer: dict, *, refresh_token: str) -> Token:
    access_token = answer.get("access_token")
    if not access_token or str(answer.get("token_type", "bearer")).lower() != "bearer":
        raise OAuthUnavailable("The token endpoint answered without a bearer access token.")
    # Authlib turns `expires_in` into an absolute `expires_at` (epoch seconds) as it reads the answer.
    expires_at = answer.get("expires_at")
    if expires_at is None:
        when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=DEFAULT_EXPIRES_IN)
    else:
        when = datetime.datetime.fromtimestamp(int(expires_at), datetime.UTC)
    return Token(access_token=access_token, refresh_token=refresh_token, expires_at=when)


def xoauth2_string(user: str, access_token: str) -> str:
    """The XOAUTH2 initial client response, unencoded (the SASL client base64-encodes it)."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"


def smtp_xoauth2_auth(smtp: smtplib.SMTP, user: str, access_token: str) -> tuple[int, bytes]:
    """Authenticate `smtp` (after EHLO, and STARTTLS where used) with AUTH XOAUTH2.

    Returns the server's (235, text). Raises `smtplib.SMTPNotSupportedError`
    when the server does not offer XOAUTH2, and `smtplib.SMTPAuthenticationError`
    when it refuses the token; its text ends with the server's decoded error
    challenge (Google's `{"status":"401",...}`) when there was one.
    """
    smtp.ehlo_or_helo_if_needed()
    mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
    if "XOAUTH2" not in mechanisms:
        raise smtplib.SMTPNotSupportedError("The SMTP server does not offer AUTH XOAUTH2.")
    error_challenges: list[bytes] = []

    def respond(challenge: bytes | None = None) -> str:
        # smtplib calls this without a challenge for the initial response (sent with AUTH);
        # a 334 after it is the server's error report, which the client must answer with an
        # empty line to get the final 535 (Google's XOAUTH2 document, "Error response").
        if challenge is None:
            return xoauth2_string(user, access_token)
        error_challenges.append(challenge)
        return ""

    try:
        return smtp.auth("XOAUTH2", respond, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        if not error_challenges:
            raise
        raise smtplib.SMTPAuthenticationError(exc.smtp_code, exc.smtp_error + b" " + error_challenges[-1]) from exc
