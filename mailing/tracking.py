"""Signed tracking tokens and the URLs and headers the sender puts into each email.

Pure functions (no database access): the sending engine calls them while it
renders a `ScheduledSend`; the views in `inbound/views.py` read the tokens
back (the token-making stays here: mailing never imports inbound).

Tokens are made with `django.core.signing` (HMAC-SHA256 over SECRET_KEY, a
distinct salt per kind, with a timestamp), so they carry no guessable id and
cannot be forged or moved from one kind to another:

- open:        the send id                       → `/t/o/<token>.gif`
- click:       the send id and the original URL  → `/t/c/<token>`
- unsubscribe: the send id                       → `/u/<token>`

A click token carries the destination inside its signed payload: the click
endpoint redirects only to what we signed, so it can never be an open redirect.

Lifetimes (settings): open and click tokens count for
`TRACKING_TOKEN_MAX_AGE_DAYS` (default 365); unsubscribe links work for
`UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS` (default 1095, well past the 30 days the
law asks for).
"""

from __future__ import annotations

import base64
import datetime
import html as html_lib
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core import signing

if TYPE_CHECKING:  # the sender passes a ScheduledSend; only its id is read
    from mailing.models import ScheduledSend

OPEN_SALT = "mailing.tracking.open"
CLICK_SALT = "mailing.tracking.click"
UNSUBSCRIBE_SALT = "mailing.tracking.unsubscribe"


def tracking_max_age() -> datetime.timedelta:
    return datetime.timedelta(days=settings.TRACKING_TOKEN_MAX_AGE_DAYS)


def unsubscribe_max_age() -> datetime.timedelta:
    return datetime.timedelta(days=settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS)


def _base_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/")


# --- the send id, compactly ----------------------------------------------------------------------------


def _pack_id(send_id: uuid.UUID | str) -> str:
    raw = uuid.UUID(str(send_id)).bytes
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unpack_id(packed: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
    except (ValueError, TypeError) as exc:
        raise signing.BadSignature("malformed id") from exc


# --- tokens --------------------------------------------------------------------------------------------


class TokenExpired(signing.BadSignature):
    """The signature is ours but older than allowed; `payload` is still authentic."""

    def __init__(self, payload):
        super().__init__("expired")
        self.payload = payload


@dataclass(frozen=True)
class ClickTarget:
    send_id: uuid.UUID
    url: str


def make_open_token(send_id: uuid.UUID | str) -> str:
    return signing.TimestampSigner(salt=OPEN_SALT).sign(_pack_id(send_id))


def make_unsubscribe_token(send_id: uuid.UUID | str) -> str:
    return signing.TimestampSigner(salt=UNSUBSCRIBE_SALT).sign(_pack_id(send_id))


def make_click_token(send_id: uuid.UUID | str, url: str) -> str:
    return signing.dumps([_pack_id(send_id), url], salt=CLICK_SALT, compress=True)


def _read_id_token(token: str, *, salt: str, max_age: datetime.timedelta) -> uuid.UUID:
    signer = signing.TimestampSigner(salt=salt)
    try:
        return _unpack_id(signer.unsign(token, max_age=max_age))
    except signing.SignatureExpired:
        raise TokenExpired(_unpack_id(signer.unsign(token))) from None


def read_open_token(token: str) -> uuid.UUID:
    """The send id of an open token. Raises BadSignature (TokenExpired when only too old)."""
    return _read_id_token(token, salt=OPEN_SALT, max_age=tracking_max_age())


def read_unsubscribe_token(token: str) -> uuid.UUID:
    """The send id of an unsubscribe token. Raises BadSignature (TokenExpired when only too old)."""
    return _read_id_token(token, salt=UNSUBSCRIBE_SALT, max_age=unsubscribe_max_age())


def read_click_token(token: str) -> ClickTarget:
    """The send and destination of a click token. Raises BadSignature (TokenExpired when only too old)."""

    def decode(payload) -> ClickTarget:
        if not (isinstance(payload, list) and len(payload) == 2 and all(isinstance(p, str) for p in payload)):
            raise signing.BadSignature("malformed payload")
        return ClickTarget(send_id=_unpack_id(payload[0]), url=payload[1])

    try:
        return decode(signing.loads(token, salt=CLICK_SALT, max_age=tracking_max_age()))
    except signing.SignatureExpired:
        raise TokenExpired(decode(signing.loads(token, salt=CLICK_SALT))) from None


# --- what the sender calls -----------------------------------------------------------------------------


def open_pixel_url(send: ScheduledSend) -> str:
    """The 1x1 open pixel's URL for this send."""
    return f"{_base_url()}/t/o/{make_open_token(send.id)}.gif"


def unsubscribe_url(send: ScheduledSend) -> str:
    """The unsubscribe page (GET) and one-click endpoint (POST) for this send's contact."""
    return f"{_base_url()}/u/{make_unsubscribe_token(send.id)}"


def click_url(send: ScheduledSend, url: str) -> str:
    return f"{_base_url()}/t/c/{make_click_token(send.id, url)}"


def open_pixel_html(send: ScheduledSend) -> str:
    """The `<img>` tag of the pixel, for the sender to append to the HTML body."""
    return (
        f'<img src="{html_lib.escape(open_pixel_url(send))}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px" />'
    )


def insert_open_pixel(html: str, send: ScheduledSend) -> str:
    """The HTML with the pixel placed just before `</body>` (or at the end)."""
    tag = open_pixel_html(send)
    at = html.lower().rfind("</body")
    if at < 0:
        return html + tag
    return html[:at] + tag + html[at:]


_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE | re.DOTALL)


def rewrite_links(html: str, send: ScheduledSend) -> str:
    """Point every http(s) link of the HTML at the click endpoint when the campaign tracks clicks.

    Identity when `send.campaign.track_clicks` is off. Links that are not
    http(s) (mailto:, tel:, anchors), contain merge-tag placeholders, or already
    point at our own tracking/unsubscribe endpoints are left alone.
    """
    if not send.campaign.track_clicks:
        return html
    own = _base_url()

    def replace(match: re.Match) -> str:
        quoted = match.group(2) if match.group(2) is not None else match.group(3)
        url = html_lib.unescape(quoted).strip()
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https") or "{{" in url:
            return match.group(0)
        if url.startswith((f"{own}/t/", f"{own}/u/")):
            return match.group(0)
        return f'{match.group(1)}"{html_lib.escape(click_url(send, url))}"'

    return _HREF.sub(replace, html)


def list_unsubscribe_headers(send: ScheduledSend, *, url: str | None = None) -> dict[str, str]:
    """`List-Unsubscribe` (URL, plus a mailto when `UNSUBSCRIBE_MAILTO` is set) and RFC 8058's one-click header.

    `url`: the send's `unsubscribe_url`, when the caller has it already (it costs a signature).
    """
    targets = [f"<{url or unsubscribe_url(send)}>"]
    if settings.UNSUBSCRIBE_MAILTO:
        subject = quote(f"unsubscribe {make_unsubscribe_token(send.id)}")
        targets.append(f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject={subject}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
