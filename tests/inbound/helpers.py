"""Small helpers shared by the inbound tests."""

import time

from django.core import signing
from django.core.signing import b62_encode

from mailing import tracking
from webhooks.models import WebhookEvent


class _OldSigner(signing.TimestampSigner):
    """Signs with a timestamp `age_days` in the past: a genuine token that has expired."""

    age_days = 4000

    def timestamp(self):
        return b62_encode(int(time.time()) - self.age_days * 86400)


def expired_open_token(send) -> str:
    return _OldSigner(salt=tracking.OPEN_SALT).sign(tracking._pack_id(send.id))


def expired_unsubscribe_token(send) -> str:
    return _OldSigner(salt=tracking.UNSUBSCRIBE_SALT).sign(tracking._pack_id(send.id))


def expired_click_token(send, url: str) -> str:
    return _OldSigner(salt=tracking.CLICK_SALT).sign_object([tracking._pack_id(send.id), url], compress=True)


def tamper(token: str) -> str:
    """Flip one character of the signature."""
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def event_types(account) -> list[str]:
    return list(WebhookEvent.objects.filter(account=account).order_by("created_at").values_list("type", flat=True))
