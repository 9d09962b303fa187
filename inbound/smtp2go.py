"""SMTP2GO webhook payloads: parse (JSON or form), authenticate, normalize with plain tables.

Follows django-anymail's inbound design without its (unreleased) SMTP2GO
backend: validate → normalize into our own event constants (unknown →
`unknown`) → keep the raw payload → store keyed by an idempotency key built
from `email_id`, `event`, `rcpt` and `time`. The view that strings these
together is `inbound.views.Smtp2goWebhookView`; nothing here writes.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

from django.utils.dateparse import parse_datetime

from accounts.models import Account
from core.parsers import contains_nul

from .models import ProviderEvent

T = ProviderEvent.Type

# SMTP2GO `event` → our event type. A bounce is split by its `bounce` field below.
EVENT_TYPES: dict[str, str] = {
    "bounce": T.BOUNCED,
    "reject": T.REJECTED,
    "spam": T.COMPLAINED,
    "unsubscribe": T.UNSUBSCRIBED,
    "delivered": T.DELIVERED,
    "processed": T.PROCESSED,
    "open": T.OPENED,
    "click": T.CLICKED,
}
# SMTP2GO `bounce` classification → our event type.
BOUNCE_TYPES: dict[str, str] = {"hard": T.BOUNCED, "soft": T.DEFERRED}

MAX_BODY_BYTES = 1_000_000


class UnparseableBody(ValueError):
    """The body is not a payload we can read; the message says why."""


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The payload as a flat dict (JSON object or form fields). Raises UnparseableBody."""
    if len(body) > MAX_BODY_BYTES:
        raise UnparseableBody("body too large")
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnparseableBody("body is not UTF-8") from exc
    if ctype == "application/json" or (not ctype and text.lstrip().startswith("{")):
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise UnparseableBody("invalid JSON") from exc
    elif ctype in ("application/x-www-form-urlencoded", ""):
        try:
            payload = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
        except ValueError as exc:
            raise UnparseableBody("invalid form body") from exc
    else:
        raise UnparseableBody(f"unsupported content type {ctype}")
    if not isinstance(payload, dict) or not payload.get("event"):
        raise UnparseableBody("no event")
    if contains_nul(payload):
        raise UnparseableBody("NUL characters cannot be stored")  # PostgreSQL refuses them in text and jsonb
    return payload


def account_for_token(token: str) -> Account | None:
    """The account whose webhook token this is: looked up by its id part, the secret compared in constant time."""
    try:
        account_id = uuid.UUID(hex=token[:32])
    except ValueError:
        return None
    account = Account.objects.filter(pk=account_id).first()
    secret = token[32:]
    expected = account.inbound_webhook_secret if account else "x" * 43
    if not hmac.compare_digest(secret.encode(), expected.encode()) or account is None:
        return None
    return account


def authorization_ok(account: Account, header: str | None) -> bool:
    """When the account configured an Authorization value, the request must carry exactly it."""
    expected = account.inbound_webhook_authorization
    if not expected:
        return True
    given = (header or "").strip()
    # The scheme is case-insensitive (RFC 9110); the credential is not.
    e_scheme, _, e_cred = expected.strip().partition(" ")
    g_scheme, _, g_cred = given.partition(" ")
    scheme_ok = hmac.compare_digest(e_scheme.lower().encode(), g_scheme.lower().encode())
    cred_ok = hmac.compare_digest(e_cred.strip().encode(), g_cred.strip().encode())
    return scheme_ok and cred_ok


def _field(payload: dict[str, Any], *names: str) -> str:
    lowered = {str(k).lower(): v for k, v in payload.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value not in (None, ""):
            return str(value).strip()
    return ""


def _parse_time(value: str) -> datetime.datetime | None:
    if not value:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return datetime.datetime.fromtimestamp(float(value), tz=datetime.UTC)
    parsed = parse_datetime(value.replace(" UTC", "").replace("Z", "+00:00"))
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def normalize(payload: dict[str, Any]) -> dict[str, Any]:
    """The ProviderEvent fields for one SMTP2GO payload (raw payload kept as is)."""
    provider_event = _field(payload, "event").lower()
    event_type = EVENT_TYPES.get(provider_event, T.UNKNOWN)
    if provider_event == "bounce":
        event_type = BOUNCE_TYPES.get(_field(payload, "bounce").lower(), T.BOUNCED)
    recipient = _field(payload, "rcpt", "recipient").strip("<>").lower()
    email_id = _field(payload, "email_id")
    time_raw = _field(payload, "time")
    message_id = _field(payload, "Message-Id", "message-id", "message_id")
    if message_id and not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    key_source = "\x1f".join([email_id, provider_event, recipient, time_raw])
    try:
        occurred_at = _parse_time(time_raw)
    except (ValueError, OverflowError, OSError):
        occurred_at = None
    return {
        "provider": "smtp2go",
        "idempotency_key": hashlib.sha256(key_source.encode()).hexdigest(),
        "event_type": event_type,
        "provider_event": provider_event[:64],
        "recipient": recipient[:320],
        "message_id": message_id[:998],
        "reason": _field(payload, "message", "context")[:2000],
        "occurred_at": occurred_at,
        "raw": payload,
    }
