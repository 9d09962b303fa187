"""A real Dovecot IMAP server whose logins are OAuth2 bearer tokens, checked by the local authorization server.

`DovecotOAuth2Server(oauth_server)` is tests/inbound's `DovecotServer` (IMAPS
with a self-signed certificate, maildirs in a temp dir, `deliver`, `stop`)
with `passdb { driver = oauth2 }` instead of a password file: the only
mechanisms are XOAUTH2 and OAUTHBEARER, and each login POSTs the token to
`oauth_server`'s RFC 7662 introspection endpoint (HTTP Basic with the client
id and secret). A token logs in when it is active and its `username` is the
login name; a revoked, expired or unknown token, or another user's, is
refused. Any user the authorization server knows can log in (a static
userdb); `deliver(raw, user=...)` puts a message in that user's INBOX.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.inbound import dovecot as base
from tests.servers.oauth_server import USER, OAuthServer

# The base configuration with the password file swapped for the oauth2 passdb. The replaced
# fragments are checked, so a change to tests/inbound/dovecot.py fails here loudly.
_PASSWD_PASSDB = """passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}"""
_OAUTH2_PASSDB = """passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/dovecot-oauth2.conf.ext
}}"""
_REPLACEMENTS = (
    ("auth_mechanisms = plain login", "auth_mechanisms = xoauth2 oauthbearer"),
    # Dovecot answers a failed login after 2 s by default; tests need no brute-force brake.
    ("disable_plaintext_auth = yes", "disable_plaintext_auth = yes\nauth_failure_delay = 0"),
    (_PASSWD_PASSDB, _OAUTH2_PASSDB),
)

# Dovecot 2.3's oauth2 passdb settings (doc.dovecot.org/2.3/configuration_manual/authentication/oauth2).
# No tokeninfo_url: with one, Dovecot would trust its answer and skip introspection.
OAUTH2_CONF = """introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


def _config() -> str:
    config = base.CONFIG
    for old, new in _REPLACEMENTS:
        assert old in config, f"tests/inbound/dovecot.py changed: {old!r} not found in its CONFIG"
        config = config.replace(old, new)
    return config


class DovecotOAuth2Server(base.DovecotServer):
    def __init__(self, oauth: OAuthServer, *, user: str = USER) -> None:
        # Not DovecotServer.__init__: it writes its own configuration and starts at once.
        self.oauth = oauth
        self.user = user  # whose maildir `maildir` and `deliver` use by default
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-oauth2-"))
        os.chmod(self.root, 0o755)  # noqa: S103 - the mail user (nobody) must reach its maildir
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        self.port = base._free_port()
        self.cert, key = base._self_signed(self.root)
        os.chmod(key, 0o600)
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir()
        for sub in ("mail", "home"):
            os.chown(self.root / sub, self.uid, self.gid)
        # The client credentials ride in the URL's userinfo: Dovecot sends them as HTTP Basic.
        credentials = f"{quote(oauth.client_id, safe='')}:{quote(oauth.client_secret, safe='')}"
        url = oauth.introspection_url.replace("http://", f"http://{credentials}@", 1)
        (self.root / "dovecot-oauth2.conf.ext").write_text(OAUTH2_CONF.format(url=url))
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(
            _config().format(root=self.root, cert=self.cert, key=key, port=self.port, uid=self.uid, gid=self.gid)
        )
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    @property
    def maildir(self) -> Path:
        return self.maildir_of(self.user)

    def maildir_of(self, user: str) -> Path:
        return self.root / "mail" / user.lower()  # Dovecot's default username_format is %Lu

    def deliver(self, raw: bytes, *, user: str | None = None) -> None:
        """Drop one message into `user`'s INBOX (default: `self.user`)."""
        if user is None or user.lower() == self.user.lower():
            super().deliver(raw)
            return
        saved, self.user = self.user, user
        try:
            super().deliver(raw)
        finally:
            self.user = saved

    def stop(self) -> None:
        super().stop()
        if self.process.stdout is not None:
            self.process.stdout.close()  # the base class leaves the pipe to the garbage collector


@pytest.fixture
def dovecot_oauth2(oauth_server, settings):
    """A running `DovecotOAuth2Server` that asks `oauth_server`; IMAP_CA_BUNDLE trusts its certificate."""
    server = DovecotOAuth2Server(oauth_server)
    settings.IMAP_CA_BUNDLE = str(server.cert)
    yield server
    server.stop()
