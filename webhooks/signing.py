"""Standard Webhooks signing, with the `standardwebhooks` reference package.

Headers: `webhook-id` (the event id, the same on every retry), `webhook-timestamp`
(seconds, per attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`, one per active secret, space-separated — during a
rotation the old secret signs alongside the new one until it expires.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not a secret)
SECRET_BYTES = 32  # the specification asks for 24 to 64


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class PayloadEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder, with datetimes as the API writes them: RFC 3339, UTC, microseconds."""

    def default(self, o):
        if isinstance(o, datetime) and o.tzinfo is not None:
            return o.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return super().default(o)


def jsonable(data: dict) -> dict:
    """`data` with datetimes, UUIDs, decimals… turned into JSON values (what the outbox stores)."""
    return json.loads(json.dumps(data, cls=PayloadEncoder))


def payload_body(*, event_id: str, event_type: str, created_at: datetime, data: dict) -> str:
    """The JSON body of an event: `{"id", "type", "created_at", "data"}`, compact."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "created_at": created_at,
            "data": data,
        },
        cls=PayloadEncoder,
        separators=(",", ":"),
    )


def signature_headers(*, msg_id: str, body: str, timestamp: datetime, secrets_in_use: list[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    signatures = " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets_in_use)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
