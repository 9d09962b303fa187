"""Delivery status notifications (RFC 3464) and the message-header helpers reply detection uses.

A DSN is a `multipart/report; report-type=delivery-status` message. The facts
come from its parts, never from its top-level headers (those belong to the
bounce itself, written by the reporting MTA):

- `message/delivery-status`: one per-message block, then one block per
  recipient with `Final-Recipient`, `Action`, `Status` (x.y.z) and
  `Diagnostic-Code`;
- `message/rfc822` or `text/rfc822-headers`: the returned message (or just its
  headers), whose `Message-ID` is the one we sent.

`Status` 5.x.x is a permanent failure (a bounce); 4.x.x is transient
(recorded only); 2.x.x (delivered/relayed reports) is ignored.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message

_MSGID = re.compile(r"<[^<>\s]+>")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class DeliveryStatus:
    """What a DSN says about one failed recipient."""

    recipient: str
    status: str  # "5.1.1"
    action: str  # "failed" | "delayed" | …
    diagnostic: str
    original_message_id: str  # "<…>" or ""

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")

    @property
    def transient(self) -> bool:
        return self.status.startswith("4")

    @property
    def reason(self) -> str:
        """The bounce reason stored on the enrollment."""
        return f"{self.status} {self.diagnostic}".strip()


def message_ids(value: str | None) -> list[str]:
    """The `<…>` Message-IDs found in a header value (In-Reply-To, References), in order."""
    return _MSGID.findall(value or "")


def _is_dsn(msg: Message) -> bool:
    return msg.get_content_type() == "multipart/report" and (
        (msg.get_param("report-type") or "").lower() == "delivery-status"
    )


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status part (per-message first, then per-recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parses each block as a Message
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    blocks = [b for b in re.split(r"\r?\n\s*\r?\n", text.strip()) if b.strip()]
    return [email.message_from_string(b + "\n", policy=email.policy.compat32) for b in blocks]


def _strip_type(value: str | None) -> str:
    """`rfc822; user@example.com` → `user@example.com`."""
    value = " ".join((value or "").split())
    return value.split(";", 1)[1].strip() if ";" in value else value


def _returned_message_id(msg: Message) -> str:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                found = message_ids(inner.get("Message-ID"))
                if found:
                    return found[0]
        elif ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            headers = email.message_from_bytes(raw, policy=email.policy.compat32)
            found = message_ids(headers.get("Message-ID"))
            if found:
                return found[0]
    return ""


def parse_dsn(msg: Message) -> list[DeliveryStatus] | None:
    """The per-recipient statuses of a DSN, or None when `msg` is not one.

    Recipients whose Status is neither 4.x.x nor 5.x.x are left out. A
    missing Status falls back to the first x.y.z in the Diagnostic-Code.
    """
    if not _is_dsn(msg):
        return None
    original = _returned_message_id(msg)
    statuses: list[DeliveryStatus] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_blocks(part):
            recipient = _strip_type(block.get("Final-Recipient") or block.get("Original-Recipient"))
            if not recipient:
                continue  # the per-message block
            diagnostic = _strip_type(block.get("Diagnostic-Code"))
            match = _STATUS.search(block.get("Status") or "") or _STATUS.search(diagnostic)
            if not match:
                continue
            statuses.append(
                DeliveryStatus(
                    recipient=recipient.strip("<>").lower(),
                    status=match.group(0),
                    action=(block.get("Action") or "").strip().lower(),
                    diagnostic=diagnostic[:1000],
                    original_message_id=original,
                )
            )
    return [s for s in statuses if s.permanent or s.transient]
