"""A real OAuth2 authorization server on 127.0.0.1 for tests: code flow with PKCE, refresh, introspection.

`OAuthServer().start()` listens on a free port (stdlib ThreadingHTTPServer)
and speaks RFC 6749 / 7636 / 7662 as Google and Microsoft do:

- `GET /authorize`: checks client_id and redirect_uri (an unknown one is a 400
  page, never a redirect), then response_type=code and a S256 code_challenge
  (else it redirects with `error=...`), approves at once as `login_hint` or
  `server.user`, and redirects to `redirect_uri?code=...&state=...`
  (`server.consent = False` answers `error=access_denied` instead).
- `POST /token`: client authentication by client_secret_post or
  client_secret_basic; `authorization_code` (single-use codes bound to the
  client, redirect_uri and challenge; a replayed code revokes what it issued)
  and `refresh_token` (Google-like: the refresh token is kept unless
  `rotate_refresh_tokens`). Errors are RFC 6749 §5.2 JSON, 400 (401 for
  invalid_client).
- `POST /introspect` (RFC 7662, HTTP Basic with the client id and secret):
  `{"active": true, "username": ..., "email": ..., "exp": ...}` or
  `{"active": false}`. Dovecot's oauth2 passdb asks this.

Test controls: `issue(user)` mints a grant as if its owner had consented;
`revoke(refresh_token)` ends a grant (its access tokens too), as a user
removing the app's access does; `expire(access_token)`; `expires_in`;
`fail_status` (every /token answer is that HTTP status, e.g. 503); `delay`
(seconds before answering /token). Every request is kept in `requests`;
`refresh_count` counts refresh grants.

`provider_settings(server)` is the `settings.OAUTH_PROVIDERS` entry for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import pytest

CLIENT_ID = "outreach-test-client.apps.example.test"
CLIENT_SECRET = "local-client-secret"
REDIRECT_URI = "http://testserver/mailboxes/oauth/callback"
USER = "sender@example.test"
SCOPE = "openid email https://mail.google.com/"
CODE_LIFETIME = 600


@dataclass
class Grant:
    """One consent: what its codes, refresh token and access tokens stand for."""

    user: str
    client_id: str
    scope: str
    refresh_token: str
    revoked: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float

    @property
    def active(self) -> bool:
        return not self.grant.revoked and self.expires_at > time.time()


@dataclass
class _Code:
    grant: Grant
    redirect_uri: str
    code_challenge: str
    expires_at: float
    used: bool = False
    issued: list[str] = field(default_factory=list)  # access tokens, revoked if the code is replayed


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class OAuthServer:
    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
        user: str = USER,
        scope: str = SCOPE,
        expires_in: int = 3600,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris = set(redirect_uris)
        self.user = user
        self.scope = scope
        self.expires_in = expires_in
        self.rotate_refresh_tokens = False
        self.consent = True
        self.fail_status: int | None = None
        self.signed_in_as: str | None = None  # the account the user picks at the provider, whatever the hint
        self.delay = 0.0
        self.requests: list[RecordedRequest] = []
        self.lock = threading.RLock()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, Grant] = {}
        self._access: dict[str, AccessToken] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    authorization_url = property(lambda self: f"{self.url}/authorize")
    token_url = property(lambda self: f"{self.url}/token")
    introspection_url = property(lambda self: f"{self.url}/introspect")

    def start(self) -> OAuthServer:
        # A short poll: shutdown() waits for it, in every test's teardown.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="oauth-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    # --- test controls -------------------------------------------------------------------

    def issue(self, user: str | None = None, *, scope: str | None = None) -> dict:
        """A token answer for a new grant of `user`, as if they had consented (no browser round)."""
        with self.lock:
            grant = Grant(user or self.user, self.client_id, scope or self.scope, secrets.token_urlsafe(32))
            self._refresh[grant.refresh_token] = grant
            return self._token_answer(grant, refresh=True)

    def revoke(self, refresh_token: str) -> None:
        """End the grant of `refresh_token` and every access token it issued (consent removed)."""
        with self.lock:
            self._refresh[refresh_token].revoked = True

    def expire(self, access_token: str) -> None:
        with self.lock:
            self._access[access_token].expires_at = time.time() - 1

    def introspect(self, token: str) -> dict:
        """RFC 7662's answer for `token`: what /introspect says, for in-process resource servers."""
        with self.lock:
            access = self._access.get(token)
            if access is None or not access.active:
                return {"active": False}
            grant = access.grant
            return {
                "active": True,
                "scope": grant.scope,
                "client_id": grant.client_id,
                "username": grant.user,
                "email": grant.user,
                "token_type": "Bearer",
                "exp": int(access.expires_at),
                "iat": int(access.expires_at - self.expires_in),
                "sub": grant.user,
            }

    def count(self, path: str, **params: str) -> int:
        with self.lock:
            return sum(
                1 for r in self.requests if r.path == path and all(r.params.get(k) == v for k, v in params.items())
            )

    @property
    def refresh_count(self) -> int:
        return self.count("/token", grant_type="refresh_token")

    # --- protocol ------------------------------------------------------------------------

    def _token_answer(self, grant: Grant, *, refresh: bool) -> dict:
        access = "ya29." + secrets.token_urlsafe(32)
        self._access[access] = AccessToken(grant, time.time() + self.expires_in)
        answer = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in, "scope": grant.scope}
        if refresh:
            answer["refresh_token"] = grant.refresh_token
        if refresh and {"openid", "email"} <= set(grant.scope.split()):
            answer["id_token"] = self._id_token(grant)  # OpenID Connect: who consented
        return answer

    def _id_token(self, grant: Grant) -> str:
        """An OIDC ID token (HS256 with the client secret, as OIDC Core 10.1 allows) naming the grant's user."""
        now = int(time.time())
        claims = {"iss": "http://127.0.0.1", "aud": grant.client_id, "sub": grant.user, "email": grant.user}
        claims.update(email_verified=True, iat=now, exp=now + 3600)

        def part(data) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
        mac = hmac.new(self.client_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    def authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) of GET /authorize."""
        if params.get("client_id") != self.client_id:
            return 400, {}, "Error 401: invalid_client. The OAuth client was not found."
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return 400, {}, "Error 400: redirect_uri_mismatch."
        state = params.get("state")

        def back(**answer: str) -> tuple[int, dict[str, str], str]:
            if state is not None:
                answer["state"] = state
            separator = "&" if urlsplit(redirect_uri).query else "?"
            return 302, {"Location": redirect_uri + separator + urlencode(answer)}, ""

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="Only response_type=code.")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not (43 <= len(challenge) <= 128):
            return back(error="invalid_request", error_description="PKCE with S256 is required.")
        requested = set(params.get("scope", "").split())
        if not requested or not requested <= set(self.scope.split()):
            return back(error="invalid_scope", error_description="Unknown scope.")
        if not self.consent:
            return back(error="access_denied", error_description="The user denied access.")
        with self.lock:
            user = self.signed_in_as or params.get("login_hint") or self.user
            grant = Grant(user, self.client_id, " ".join(sorted(requested)), secrets.token_urlsafe(32))
            code = secrets.token_urlsafe(24)
            self._codes[code] = _Code(grant, redirect_uri, challenge, time.time() + CODE_LIFETIME)
        return back(code=code)

    def token(self, params: dict[str, str], authorization: str) -> dict:
        """The JSON answer of POST /token; raises `OAuthError` for RFC 6749 §5.2 errors."""
        self._authenticate_client(params, authorization)
        grant_type = params.get("grant_type")
        with self.lock:
            if grant_type == "authorization_code":
                return self._authorization_code(params)
            if grant_type == "refresh_token":
                return self._refresh_token(params)
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported.")

    def _authenticate_client(self, params: dict[str, str], authorization: str) -> None:
        basic = authorization.startswith("Basic ")
        if basic and "client_secret" in params:
            raise OAuthError("invalid_request", "Use one client authentication method.")
        if basic:
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode()
            except ValueError as exc:
                raise OAuthError("invalid_client", "Malformed Basic credentials.", 401) from exc
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)  # RFC 6749 §2.3.1 form-encodes both
        else:
            client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            raise OAuthError("invalid_client", "Client authentication failed.", 401)

    def _authorization_code(self, params: dict[str, str]) -> dict:
        code = self._codes.get(params.get("code", ""))
        if code is None or code.expires_at < time.time():
            raise OAuthError("invalid_grant", "Malformed auth code.")
        if code.used:
            # RFC 6749 §4.1.2: a replayed code should revoke the tokens it issued.
            code.grant.revoked = True
            raise OAuthError("invalid_grant", "Code was already redeemed.")
        if params.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request.")
        verifier = params.get("code_verifier", "")
        if not verifier:
            raise OAuthError("invalid_request", "Missing code verifier.")
        code.used = True  # a wrong verifier burns the code too
        if not secrets.compare_digest(s256(verifier), code.code_challenge):
            raise OAuthError("invalid_grant", "Invalid code verifier.")
        self._refresh[code.grant.refresh_token] = code.grant
        answer = self._token_answer(code.grant, refresh=True)
        code.issued.append(answer["access_token"])
        return answer

    def _refresh_token(self, params: dict[str, str]) -> dict:
        grant = self._refresh.get(params.get("refresh_token", ""))
        if grant is None or grant.revoked or grant.client_id != self.client_id:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if "scope" in params and not set(params["scope"].split()) <= set(grant.scope.split()):
            raise OAuthError("invalid_scope", "The scope exceeds the original grant.")
        if self.rotate_refresh_tokens:
            del self._refresh[grant.refresh_token]
            grant.refresh_token = secrets.token_urlsafe(32)
            self._refresh[grant.refresh_token] = grant
        return self._token_answer(grant, refresh=self.rotate_refresh_tokens)

    def introspection(self, params: dict[str, str], authorization: str) -> dict:
        if not authorization.startswith("Basic "):
            raise OAuthError("invalid_client", "Introspection needs client authentication.", 401)
        self._authenticate_client({}, authorization)
        return self.introspect(params.get("token", ""))


def _handler_for(server: OAuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet: pytest shows failures, not access logs
            pass

        def _params(self) -> dict[str, str]:
            params = dict(parse_qsl(urlsplit(self.path).query))
            if self.command == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                params.update(parse_qsl(body, keep_blank_values=True))
            return params

        def _answer(self, status: int, body: str | dict, headers: dict[str, str] | None = None) -> None:
            payload = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            content_type = "application/json" if isinstance(body, dict) else "text/html; charset=utf-8"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _record(self, params: dict[str, str]) -> str:
            path = urlsplit(self.path).path
            with server.lock:
                server.requests.append(RecordedRequest(self.command, path, params, dict(self.headers)))
            return path

        def do_GET(self):
            params = self._params()
            path = self._record(params)
            if path == "/authorize":
                status, headers, body = server.authorize(params)
                self._answer(status, body, headers)
            else:
                self._answer(404, "Not found")

        def do_POST(self):
            params = self._params()
            path = self._record(params)
            authorization = self.headers.get("Authorization", "")
            try:
                if path == "/token":
                    if server.delay:
                        time.sleep(server.delay)
                    if server.fail_status:
                        self._answer(server.fail_status, "<html><body>Service unavailable</body></html>")
                        return
                    self._answer(200, server.token(params, authorization), {"Pragma": "no-cache"})
                elif path == "/introspect":
                    self._answer(200, server.introspection(params, authorization))
                else:
                    self._answer(404, "Not found")
            except OAuthError as exc:
                headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if exc.status == 401 else {}
                self._answer(exc.status, {"error": exc.error, "error_description": exc.description}, headers)

    return Handler


def provider_settings(server: OAuthServer, *, label: str = "Local", **overrides) -> dict:
    """The `settings.OAUTH_PROVIDERS[...]` entry for `server` (SMTP/IMAP ports: pass them in `overrides`)."""
    return {
        "label": label,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "authorization_url": server.authorization_url,
        "token_url": server.token_url,
        "scopes": server.scope.split(),
        "authorize_params": {"access_type": "offline", "prompt": "consent"},
        "smtp_host": "127.0.0.1",
        "smtp_port": 587,
        "imap_host": "127.0.0.1",
        "imap_port": 993,
        **overrides,
    }


@pytest.fixture
def oauth_server():
    """A running `OAuthServer`, stopped after the test."""
    server = OAuthServer().start()
    yield server
    server.stop()


@pytest.fixture
def oauth_providers(settings, oauth_server):
    """`settings.OAUTH_PROVIDERS`: both "google" and "microsoft" point at `oauth_server`."""
    settings.OAUTH_PROVIDERS = {
        "google": provider_settings(oauth_server, label="Google"),
        "microsoft": provider_settings(oauth_server, label="Microsoft", authorize_params={}),
    }
    return settings.OAUTH_PROVIDERS
