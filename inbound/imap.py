"""Reply detection: poll a mailbox's INBOX over IMAP (TLS) and apply what concerns our sends.

`ReplyDetectionJob(mailbox).run()` is incremental. It remembers the
folder's UIDVALIDITY and the highest UID seen (`ImapSyncState`), and asks
only for newer UIDs; when UIDVALIDITY changes (the server renumbered the
folder), it re-reads the folder from the start, and the unique Message-ID of
`InboundMessage` keeps anything from counting twice.

Per poll: SELECT (read-only, nothing is marked seen) → UID SEARCH for the new
UIDs → FETCH of a few headers only → decide which messages concern us →
FETCH of the full message for those only:

- a reply names one of our Message-IDs in `In-Reply-To`/`References`, or,
  failing that, comes from an enrolled contact of a campaign sent through this
  mailbox (the latest send to that address);
- a DSN (`multipart/report; report-type=delivery-status`) is matched by the
  Message-ID in its returned headers, else by its failed recipient;
- auto-replies are stored and flagged (`inbound.autoreply`) but do not count.

Failures (login refused, connection, TLS) are recorded on the sync state and
the next attempt waits an exponential backoff; they never raise to the caller.
"""

from __future__ import annotations

import contextlib
import datetime
import email
import email.policy
import hashlib
import re
import ssl
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from campaigns.models import SmtpCredential
from mailboxes import oauth
from mailboxes.models import Mailbox
from mailboxes.services import mailbox_access_token_refused
from mailing.models import ScheduledSend
from mailing.services import mailbox_sign_in_token
from mailing.smtp import checked_address

from .autoreply import auto_reply_reason
from .dsn import message_ids, parse_dsn
from .models import ImapSyncState, InboundMessage
from .services import InboundFacts, inbound_message_record

HEADER_FIELDS = (
    "MESSAGE-ID IN-REPLY-TO REFERENCES FROM SUBJECT DATE CONTENT-TYPE AUTO-SUBMITTED PRECEDENCE "
    "X-AUTOREPLY X-AUTORESPOND X-AUTO-RESPONSE-SUPPRESS"
)
HEADER_ITEM = f"BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})]"
HEADER_CHUNK = 500
BODY_CHUNK = 25
SNIPPET_CHARS = 500


@dataclass
class PollResult:
    ok: bool = True
    error: str = ""
    resynced: bool = False
    scanned: int = 0  # messages whose headers were fetched
    bodies: int = 0  # messages fetched in full
    replies: int = 0
    auto_replies: int = 0
    bounces: int = 0
    delays: int = 0
    duplicates: int = 0
    commands: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    skipped: bool = False
    matched: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        return str(value)


def _header_bytes(data: dict) -> bytes:
    for key, value in data.items():
        if isinstance(key, bytes) and key.startswith(b"BODY[HEADER") and isinstance(value, bytes):
            return value
    return b""


def _body_bytes(data: dict) -> bytes:
    value = data.get(b"BODY[]")
    return value if isinstance(value, bytes) else b""


def _received_at(msg: Message, data: dict) -> datetime.datetime:
    internal = data.get(b"INTERNALDATE")
    if isinstance(internal, datetime.datetime):
        return internal if internal.tzinfo else timezone.make_aware(internal, datetime.UTC)
    try:
        parsed = parsedate_to_datetime(msg.get("Date", ""))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    except (TypeError, ValueError, IndexError):
        return timezone.now()


def _message_id(msg: Message, header_bytes: bytes) -> str:
    found = message_ids(msg.get("Message-ID"))
    if found:
        return found[0][:998]
    # No Message-ID: a stable stand-in from the headers, so a re-poll still finds it stored.
    return f"<{hashlib.sha256(header_bytes).hexdigest()[:40]}@no-message-id.invalid>"


def _snippet(msg: Message) -> str:
    plain, html = "", ""
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        raw = part.get_payload(decode=True) or b""
        text = raw.decode(part.get_content_charset() or "utf-8", errors="replace")
        if ctype == "text/plain" and not plain:
            plain = text
        elif ctype == "text/html" and not html:
            html = re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(style|script)\b.*?</\1>", " ", text))
    text = plain or html
    # Drop the quoted original ("> …" lines and what follows "On … wrote:").
    lines = []
    for line in text.splitlines():
        if (
            line.startswith(">")
            or re.match(r"^\s*On .+ wrote:\s*$", line)
            or line.strip() == "-----Original Message-----"
        ):
            break
        lines.append(line)
    return " ".join(" ".join(lines).split())[:SNIPPET_CHARS]


def _is_dsn_header(msg: Message) -> bool:
    ctype = (msg.get("Content-Type") or "").lower()
    return "multipart/report" in ctype and "delivery-status" in ctype


def _ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.IMAP_CA_BUNDLE:
        context.load_verify_locations(cafile=settings.IMAP_CA_BUNDLE)
    return context


class ReplyDetectionJob:
    """One poll of one mailbox, for every campaign and journey sending through it. Construct and call `run()`."""

    def __init__(self, mailbox: Mailbox, *, folder: str = "INBOX", timeout: float | None = None):
        self.mailbox = mailbox
        self.folder = folder
        self.timeout = timeout or settings.IMAP_TIMEOUT_SECONDS
        self.result = PollResult()
        self.account_id = mailbox.account_id

    # --- connection ---------------------------------------------------------------------------------

    def _connect(self) -> IMAPClient:
        mailbox = self.mailbox
        port = mailbox.imap_port or 993
        # Refuses a host on our own network (SSRF); IMAPClient resolves the name again itself, so
        # unlike SMTP the connection is not pinned to the checked address.
        checked_address(mailbox.imap_host, port)
        # A token first: a revoked grant fails here, before any connection is opened.
        access_token = mailbox_sign_in_token(mailbox=mailbox) if mailbox.is_oauth2 else None
        client = IMAPClient(
            mailbox.imap_host,
            port=port,
            ssl=port != 143,
            ssl_context=_ssl_context(),
            timeout=self.timeout,
        )
        if port == 143:
            client.starttls(_ssl_context())
        client.normalise_times = False
        self._count_traffic(client)
        if access_token is not None:
            client.oauth2_login(mailbox.imap_username, access_token)
        else:
            client.login(mailbox.imap_username, mailbox.imap_password)
        return client

    def _count_traffic(self, client: IMAPClient) -> None:
        """Count commands and bytes on the wire (the poll's cost, reported by the benchmark)."""
        imap, result = client._imap, self.result
        send, read, readline = imap.send, imap.read, imap.readline

        def counted_send(data):
            result.commands += 1
            result.bytes_sent += len(data)
            return send(data)

        def counted_read(size):
            data = read(size)
            result.bytes_received += len(data)
            return data

        def counted_readline():
            data = readline()
            result.bytes_received += len(data)
            return data

        imap.send, imap.read, imap.readline = counted_send, counted_read, counted_readline

    # --- the poll -----------------------------------------------------------------------------------

    def run(self) -> PollResult:
        state, _ = ImapSyncState.objects.get_or_create(mailbox=self.mailbox)
        now = timezone.now()
        ImapSyncState.objects.filter(pk=state.pk).update(last_polled_at=now)
        try:
            client = self._connect()
            try:
                self._poll(client, state)
            finally:
                with contextlib.suppress(IMAPClientError, OSError):
                    client.logout()
        except LoginError as exc:
            if self.mailbox.is_oauth2:
                mailbox_access_token_refused(mailbox=self.mailbox)  # the next poll refreshes it first
            self._fail(state, f"IMAP login failed: {_text(exc)}"[:1000])
        except oauth.OAuthRevoked as exc:  # the mailbox is disabled already (`mailbox_sign_in_token`)
            self._fail(state, f"OAuth2 grant revoked: {exc}"[:1000])
        except oauth.OAuthUnavailable as exc:
            self._fail(state, f"OAuth2 token refresh failed: {exc}"[:1000])
        except (TimeoutError, IMAPClientError, OSError, ssl.SSLError) as exc:
            self._fail(state, f"IMAP error: {type(exc).__name__}: {exc}"[:1000])
        else:
            ImapSyncState.objects.filter(pk=state.pk).update(
                last_success_at=timezone.now(),
                last_error="",
                consecutive_failures=0,
                next_attempt_at=None,
            )
        return self.result

    def _fail(self, state: ImapSyncState, message: str) -> None:
        failures = state.consecutive_failures + 1
        delay = min(settings.IMAP_BACKOFF_BASE_SECONDS * 2 ** (failures - 1), settings.IMAP_BACKOFF_MAX_SECONDS)
        now = timezone.now()
        ImapSyncState.objects.filter(pk=state.pk).update(
            last_error=message,
            last_error_at=now,
            consecutive_failures=failures,
            next_attempt_at=now + datetime.timedelta(seconds=delay),
        )
        self.result.ok, self.result.error = False, message

    def _poll(self, client: IMAPClient, state: ImapSyncState) -> None:
        info = client.select_folder(self.folder, readonly=True)
        uidvalidity = int(info[b"UIDVALIDITY"])
        uidnext = int(info.get(b"UIDNEXT") or 0)
        last_uid = state.last_uid
        if state.uidvalidity is not None and state.uidvalidity != uidvalidity:
            self.result.resynced = True
            last_uid = 0
        if state.uidvalidity != uidvalidity:
            ImapSyncState.objects.filter(pk=state.pk).update(uidvalidity=uidvalidity, last_uid=0, folder=self.folder)
        if uidnext and last_uid + 1 >= uidnext:
            return  # nothing new: no SEARCH, no FETCH
        # "n:*" always includes the highest UID, even below n: keep only the new ones.
        uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)
        for start in range(0, len(uids), HEADER_CHUNK):
            chunk = uids[start : start + HEADER_CHUNK]
            self._process_chunk(client, chunk)
            ImapSyncState.objects.filter(pk=state.pk).update(last_uid=chunk[-1])

    def _process_chunk(self, client: IMAPClient, uids: list[int]) -> None:
        fetched = client.fetch(uids, [HEADER_ITEM, "INTERNALDATE"])
        self.result.scanned += len(fetched)
        headers: dict[int, tuple[Message, bytes, dict]] = {}
        for uid, data in fetched.items():
            raw = _header_bytes(data)
            headers[uid] = (email.message_from_bytes(raw, policy=email.policy.compat32), raw, data)
        # Skip what is stored already (a re-sync after a UIDVALIDITY change, a redelivered poll).
        ids = {uid: _message_id(msg, raw) for uid, (msg, raw, _) in headers.items()}
        stored = set(
            InboundMessage.objects.filter(mailbox=self.mailbox, message_id__in=set(ids.values())).values_list(
                "message_id", flat=True
            )
        )
        self.result.duplicates += sum(1 for mid in ids.values() if mid in stored)
        pending = {uid: v for uid, v in headers.items() if ids[uid] not in stored}
        matches = self._match(pending)
        if not matches:
            return
        for start in range(0, len(matches), BODY_CHUNK):
            part = matches[start : start + BODY_CHUNK]
            bodies = client.fetch([uid for uid, *_ in part], ["BODY.PEEK[]"])
            self.result.bodies += len(bodies)
            for uid, matched_by, send in part:
                raw = _body_bytes(bodies.get(uid, {}))
                if not raw:
                    continue
                msg_headers, _, data = pending[uid]
                full = email.message_from_bytes(raw, policy=email.policy.compat32)
                self._record(uid, ids[uid], full, _received_at(msg_headers, data), matched_by, send)

    def _sends(self):
        return ScheduledSend.objects.filter(campaign__account_id=self.account_id)

    def _match(self, pending: dict[int, tuple[Message, bytes, dict]]) -> list[tuple[int, str, ScheduledSend | None]]:
        """(uid, matched_by, send) for the messages that concern us; DSNs are matched after their body is read."""
        referenced: dict[int, list[str]] = {}
        for uid, (msg, _, _) in pending.items():
            refs = message_ids(msg.get("In-Reply-To")) + list(reversed(message_ids(msg.get("References"))))
            if refs:
                referenced[uid] = refs
        all_refs = {ref for refs in referenced.values() for ref in refs}
        by_message_id = {s.message_id: s for s in self._sends().filter(message_id__in=all_refs)} if all_refs else {}
        matches: list[tuple[int, str, ScheduledSend | None]] = []
        unmatched_from: dict[int, str] = {}
        for uid, (msg, _, _) in sorted(pending.items()):
            if _is_dsn_header(msg):
                matches.append((uid, "dsn", None))
                continue
            send = next((by_message_id[r] for r in referenced.get(uid, []) if r in by_message_id), None)
            if send is not None:
                matches.append((uid, InboundMessage.MatchedBy.HEADERS, send))
                continue
            address = parseaddr(_text(msg.get("From")))[1].strip().lower()
            if address:
                unmatched_from[uid] = address
        if unmatched_from:
            latest = self._latest_sends_to(set(unmatched_from.values()), via_mailbox=True)
            for uid, address in unmatched_from.items():
                if address in latest:
                    matches.append((uid, InboundMessage.MatchedBy.SENDER, latest[address]))
        return sorted(matches, key=lambda m: m[0])

    def _latest_sends_to(self, addresses: set[str], *, via_mailbox: bool) -> dict[str, ScheduledSend]:
        """The latest send to each address, of any campaign or journey (through this mailbox: `via_mailbox`)."""
        sends = self._sends().filter(enrollment__contact__email__in=addresses, sent_at__isnull=False)
        if via_mailbox:
            sends = sends.filter(smtp_credential__mailbox_id=self.mailbox.pk)
        latest: dict[str, ScheduledSend] = {}
        for send in sends.select_related("enrollment__contact").order_by("-sent_at"):
            latest.setdefault(send.enrollment.contact.email, send)
        return latest

    def _record(self, uid, message_id, msg, received_at, matched_by, send) -> None:
        facts = InboundFacts(
            message_id=message_id,
            kind=InboundMessage.Kind.REPLY,
            matched_by=matched_by,
            from_email=parseaddr(_text(msg.get("From")))[1][:320],
            subject=_text(msg.get("Subject"))[:998],
            received_at=received_at,
            imap_uid=uid,
        )
        if matched_by == "dsn":
            statuses = parse_dsn(msg) or []
            status = next((s for s in statuses if s.permanent), statuses[0] if statuses else None)
            if status is None:
                return
            send, facts.matched_by = self._dsn_send(status.original_message_id, status.recipient)
            if send is None:
                return
            facts.kind = InboundMessage.Kind.BOUNCE if status.permanent else InboundMessage.Kind.DELAY
            facts.dsn_recipient, facts.dsn_status = status.recipient[:320], status.status
            facts.dsn_diagnostic = status.diagnostic
            facts.snippet = status.reason[:SNIPPET_CHARS]
        else:
            facts.snippet = _snippet(msg)
            facts.auto_reply_reason = auto_reply_reason(msg, facts.snippet)[:255]
            if facts.auto_reply_reason:
                facts.kind = InboundMessage.Kind.AUTO_REPLY
        stored = inbound_message_record(
            facts=facts,
            mailbox_id=self.mailbox.pk,
            smtp_credential_id=send.smtp_credential_id,
            send=send,
            enrollment_id=send.enrollment_id,
        )
        if stored is None:
            self.result.duplicates += 1
            return
        counter = {"reply": "replies", "auto_reply": "auto_replies", "bounce": "bounces", "delay": "delays"}
        setattr(self.result, counter[facts.kind], getattr(self.result, counter[facts.kind]) + 1)
        self.result.matched.append(message_id)

    def _dsn_send(self, original_message_id: str, recipient: str) -> tuple[ScheduledSend | None, str]:
        if original_message_id:
            send = self._sends().filter(message_id=original_message_id).first()
            if send is not None:
                return send, InboundMessage.MatchedBy.HEADERS
        latest = self._latest_sends_to({recipient}, via_mailbox=True)
        return latest.get(recipient), InboundMessage.MatchedBy.RECIPIENT


def mailboxes_due_for_poll(now: datetime.datetime | None = None):
    """Mailboxes with IMAP settings that some campaign or journey sends through, whose backoff has passed.

    One poll per mailbox, whatever the number of campaigns using it. A
    disabled mailbox is still read: replies to what it sent before must
    still stop their sequences, which go on through the campaign's other
    mailboxes.
    """
    now = now or timezone.now()
    in_use = SmtpCredential.objects.filter(mailbox_id=OuterRef("pk"))
    return (
        Mailbox.objects.filter(Exists(in_use))
        .exclude(imap_host="")
        .exclude(imap_username="")
        # An OAuth2 grant known to be revoked waits for its reconnection instead of asking the provider again.
        .filter(
            Q(auth_kind=Mailbox.AuthKind.OAUTH2, oauth_refresh_token__gt="", oauth_revoked_at__isnull=True)
            | ~Q(imap_password="")
        )
        .filter(
            Q(imap_sync_state__isnull=True)
            | Q(imap_sync_state__next_attempt_at__isnull=True)
            | Q(imap_sync_state__next_attempt_at__lte=now)
        )
    )
