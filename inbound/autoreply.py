"""Is an inbound message an automatic reply? Headers first, then subject and body heuristics.

RFC 3834 senders say so in headers (`Auto-Submitted` other than `no`,
`X-Autoreply`, `X-Autorespond`, `Precedence: auto_reply|bulk|junk`).
Exchange/Outlook out-of-office mail carries none of them (at best
`X-Auto-Response-Suppress`), so common out-of-office subjects in a few
languages, and out-of-office phrases at the start of the body, count too.
A false positive only means a reply is stored as `auto_reply` (visible to the
operator) instead of stopping the sequence.
"""

from __future__ import annotations

import re
from email.message import Message

_PRECEDENCE = {"auto_reply", "bulk", "junk"}
_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|out of (the )?office|ooo\b|"
    r"away from (the )?office|on vacation|vacation reply|abwesenheit|automatische antwort|"
    r"r[ée]ponse automatique|absence|respuesta autom[aá]tica|fuera de la oficina|risposta automatica|"
    r"automatisch antwoord|afwezig|autosvar|automaattinen vastaus|resposta autom[aá]tica)",
    re.IGNORECASE,
)
_BODY = re.compile(
    r"\b(i am|i'm|i will be|i'll be|i am currently|i'm currently)\s+(currently\s+)?"
    r"(out of (the )?office|away from (the )?office|on (annual |parental |sick )?leave|on vacation|on holiday|"
    r"away until|travell?ing with limited)|\bwith limited access to (e-?mail|my e-?mail)\b"
    r"|\bthis is an automatic(ally generated)? (reply|response|message)\b",
    re.IGNORECASE,
)


def auto_reply_reason(msg: Message, body_start: str = "") -> str:
    """Why `msg` looks automatic ("" when it looks written by a person)."""
    auto_submitted = (msg.get("Auto-Submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if msg.get(header) is not None:
            return header
    precedence = (msg.get("Precedence") or "").strip().lower()
    if precedence in _PRECEDENCE:
        return f"Precedence: {precedence}"
    # Exchange puts this on its own automatic mail (OOF, recalls), not on a person's reply.
    exchange_auto = (msg.get("X-Auto-Response-Suppress") or "").strip().lower() in ("all", "oof", "autoreply")
    if exchange_auto and (_SUBJECT.search(str(msg.get("Subject") or "")) or _BODY.search(body_start[:2000])):
        return "Exchange automatic reply"
    subject = str(msg.get("Subject") or "")
    if _SUBJECT.search(subject):
        return "out-of-office subject"
    if body_start and _BODY.search(body_start[:600]):
        return "out-of-office body"
    return ""
