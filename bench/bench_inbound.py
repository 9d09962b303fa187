"""Inbound events: an incremental IMAP poll against a full scan; the open-pixel endpoint's throughput.

1. Reply detection. A real Dovecot (the tests' helper: IMAPS on 127.0.0.1)
   holds 10,000 messages that concern none of our sends; a first poll reads
   them (and lets Dovecot build its indexes). 20 new messages arrive (10
   replies naming our Message-IDs, 10 unrelated) and the incremental poll
   runs. Baseline, same run: a full scan of the same 10,020-message folder
   (the same job with its last-seen UID reset: every header fetched again).
   Reported: time, commands and bytes on the wire for both.

2. Open pixel. One gunicorn worker process with 2 threads serves the app;
   a local load generator (4 processes x 4 keep-alive connections, plain
   http.client) requests pixel URLs of 2,000 sent enrollments, each about
   5 times. The view verifies the token and queues the load in Redis
   (inbound/open_queue.py); after the load, the beat task's function applies
   the backlog (the first load of each is the open: a transition and its
   webhook event; the rest change nothing), timed separately, and the figure
   checks that all 2,000 enrollments ended up opened. Baseline, same run: the same gunicorn
   settings serving a bare WSGI app that returns the same GIF (the ceiling of
   server plus load generator on this machine). Target: >= 500 requests/s.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import BenchContext, Result, timed

ROOT = Path(__file__).resolve().parent.parent
MAILBOX = 10_000
NEW = 20
PIXEL_SENDS = 2_000
PIXEL_REQUESTS = 10_000
LOAD_PROCESSES = 4
LOAD_CONNECTIONS = 4
TARGET_RPS = 500.0

BARE_APP = """
import base64
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "image/gif"), ("Content-Length", str(len(PIXEL))),
                              ("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0, private")])
    return [PIXEL]
"""


def _purge(name: str) -> None:
    """An older run's webhook events (its sends, inbound rows and mailboxes go with the account:
    `BenchContext.fresh_account`)."""
    from django.db import connection

    from accounts.models import Account

    ids = list(Account.objects.filter(name=name).values_list("id", flat=True))
    if ids:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM webhooks_webhookevent WHERE account_id = ANY(%s)", [ids])


def _seed_sends(ctx: BenchContext, name: str, count: int, *, imap_port: int | None = None):
    """An account, an active campaign with one step and a credential (a use of one mailbox), and `count` sent
    enrollments (one send each)."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, SequenceStep, SmtpCredential
    from contacts.models import Contact
    from enrollments.models import Enrollment
    from mailboxes.models import Mailbox
    from mailing.models import ScheduledSend

    _purge(name)
    account = ctx.fresh_account(name)
    campaign = Campaign.objects.create(account=account, name=name, status="active")
    step = SequenceStep.objects.create(campaign=campaign, position=1, subject="Hi", body_html="<p>Hi</p>")
    imap = {}
    if imap_port:
        from tests.inbound.dovecot import PASSWORD, USER

        imap = {"imap_host": "127.0.0.1", "imap_port": imap_port, "imap_username": USER, "imap_password": PASSWORD}
    mailbox = Mailbox.objects.create(
        account=account,
        email="bench@example.com",
        smtp_host="127.0.0.1",
        smtp_port=2525,
        smtp_username="bench@example.com",
        smtp_password="bench-not-a-secret",  # noqa: S106 - never used to log in
        smtp_security="none",
        **imap,
    )
    credential = SmtpCredential.objects.create(campaign=campaign, mailbox=mailbox)
    sent_at = timezone.now() - timezone.timedelta(hours=1)
    contacts = Contact.objects.bulk_create(
        Contact(account=account, email=f"lead{i}@bench.example") for i in range(count)
    )
    enrollments = Enrollment.objects.bulk_create(
        Enrollment(campaign=campaign, contact=c, status="sent", sent_at=sent_at, smtp_credential=credential)
        for c in contacts
    )
    sends = ScheduledSend.objects.bulk_create(
        ScheduledSend(
            campaign=campaign,
            enrollment=e,
            step=step,
            smtp_credential=credential,
            status="sent",
            send_at=sent_at,
            sent_at=sent_at,
            message_id=f"<{uuid.uuid4()}@bench.example>",
        )
        for e in enrollments
    )
    with connection.cursor() as cursor:
        # As autovacuum would have, which a bench server may run without: statistics of what the tables
        # hold now (a plan made from a table last analyzed empty scans millions of rows), and no dead
        # rows left by earlier groups (the planner probes index ends through them: 30 ms a lookup).
        for table in ("contacts_contact", "enrollments_enrollment", "mailing_scheduledsend"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    connection.close()
    return credential, sends


# --- 1. IMAP --------------------------------------------------------------------------------------------


def _filler(i: int) -> bytes:
    return (
        f"From: Someone {i} <someone{i}@elsewhere.example>\r\nTo: replies@example.test\r\n"
        f"Subject: Newsletter number {i}\r\nDate: Mon, 20 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <filler-{i}@elsewhere.example>\r\nContent-Type: text/plain\r\n\r\n"
        + ("Lorem ipsum dolor sit amet. " * 40)
        + "\r\n"
    ).encode()


def _imap_results(ctx: BenchContext) -> list[Result]:
    from django.conf import settings

    from inbound.imap import ReplyDetectionJob
    from inbound.models import ImapSyncState
    from mailboxes.models import Mailbox
    from tests.inbound import mail
    from tests.inbound.dovecot import DovecotServer

    server = DovecotServer()
    try:
        settings.IMAP_CA_BUNDLE = str(server.cert)
        credential, sends = _seed_sends(ctx, "bench-inbound-imap", 10, imap_port=server.port)
        server.deliver_many(_filler(i) for i in range(MAILBOX))

        def poll():
            fresh = Mailbox.objects.get(pk=credential.mailbox_id)
            started = time.perf_counter()
            result = ReplyDetectionJob(fresh).run()
            return time.perf_counter() - started, result

        first_seconds, _ = poll()  # the initial read of the whole folder
        for i, send in enumerate(sends):
            server.deliver(mail.reply(f"lead{i}@bench.example", in_reply_to=send.message_id))
            server.deliver(_filler(MAILBOX + i))
        inc_seconds, inc = poll()
        ImapSyncState.objects.filter(mailbox_id=credential.mailbox_id).update(last_uid=0)
        full_seconds, full = poll()
        assert inc.replies == 10 and full.replies == 0, (inc, full)
        extra = {
            "incremental": {
                "scanned": inc.scanned,
                "bodies": inc.bodies,
                "replies": inc.replies,
                "commands": inc.commands,
                "bytes_received": inc.bytes_received,
                "bytes_sent": inc.bytes_sent,
            },
            "full_scan": {
                "scanned": full.scanned,
                "bodies": full.bodies,
                "commands": full.commands,
                "bytes_received": full.bytes_received,
                "bytes_sent": full.bytes_sent,
                "seconds": round(full_seconds, 3),
            },
            "first_poll_seconds": round(first_seconds, 3),
        }
        return [
            Result(
                "IMAP poll, 20 new in 10,020 messages (vs full scan)",
                round(inc_seconds, 3),
                "s",
                baseline=round(full_seconds, 3),
                target="fetches only the 20 new",
                ok=inc.scanned == NEW and inc.bodies == 10,
                extra=extra,
            ),
            Result(
                "IMAP poll bytes received, 20 new (vs full scan)",
                inc.bytes_received,
                "bytes",
                baseline=full.bytes_received,
                extra={"commands": inc.commands, "full_scan_commands": full.commands},
            ),
        ]
    finally:
        server.stop()


# --- 2. pixel -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn(app: str, port: int, *, pythonpath: str) -> subprocess.Popen:
    from django.conf import settings

    # Production mode, with the key the pixel URLs were signed with.
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": settings.SECRET_KEY, "PYTHONPATH": pythonpath}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--workers=1",
            "--threads=2",
            "--worker-class=gthread",
            f"--bind=127.0.0.1:{port}",
            "--keep-alive=30",
            "--log-level=warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def _load_worker(args) -> list[float]:
    port, paths = args
    import threading

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    chunks = [paths[i::LOAD_CONNECTIONS] for i in range(LOAD_CONNECTIONS)]

    def run(chunk):
        try:
            measure(chunk)
        except Exception as exc:
            errors.append(repr(exc))

    def measure(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for path in chunk:
            started = time.perf_counter()
            # As behind the PaaS router, which terminates TLS (production settings redirect plain HTTP).
            conn.request(
                "GET", path, headers={"User-Agent": "Mozilla/5.0 (bench) Chrome/120", "X-Forwarded-Proto": "https"}
            )
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return latencies


def _load(port: int, paths: list[str]) -> tuple[float, list[float]]:
    # warm up each connection path once (imports, first DB connection)
    _load_worker((port, paths[:8]))
    parts = [paths[i::LOAD_PROCESSES] for i in range(LOAD_PROCESSES)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(LOAD_PROCESSES) as pool:
        started = time.perf_counter()
        results = pool.map(_load_worker, [(port, part) for part in parts])
        elapsed = time.perf_counter() - started
    return elapsed, [x for r in results for x in r]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _pixel_results(ctx: BenchContext) -> list[Result]:
    import random

    from enrollments.models import Enrollment
    from mailing import tracking

    _, sends = _seed_sends(ctx, "bench-inbound-pixel", PIXEL_SENDS)
    urls = [tracking.open_pixel_url(s).split("://", 1)[1].split("/", 1)[1] for s in sends]
    paths = ["/" + u for u in urls] * (PIXEL_REQUESTS // PIXEL_SENDS)
    random.Random(7).shuffle(paths)

    bare_dir = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    (bare_dir / "bare_pixel.py").write_text(BARE_APP)
    port = _free_port()
    bare = _gunicorn("bare_pixel:application", port, pythonpath=str(bare_dir))
    try:
        bare_elapsed, bare_lat = _load(port, paths)
    finally:
        bare.terminate()
        bare.wait()

    from inbound import open_queue

    open_queue._client().delete(open_queue._key())  # nothing left over from an earlier run
    port = _free_port()
    app = _gunicorn("config.wsgi:application", port, pythonpath=str(ROOT))
    try:
        elapsed, lat = _load(port, paths)
    finally:
        app.terminate()
        app.wait()
    # What the beat task does every 2 s, timed here for the whole backlog at once.
    apply_seconds, applied = timed(open_queue.open_hits_apply)
    opened = Enrollment.objects.filter(pk__in=[s.enrollment_id for s in sends], status="opened").count()
    rps, bare_rps = len(lat) / elapsed, len(bare_lat) / bare_elapsed
    return [
        Result(
            "open pixel, 1 gunicorn worker x 2 threads (vs bare WSGI GIF)",
            round(rps, 1),
            "req/s",
            baseline=round(bare_rps, 1),
            target=f">= {TARGET_RPS:.0f} req/s",
            ok=rps >= TARGET_RPS and opened == PIXEL_SENDS,
            extra={
                "requests": len(lat),
                "p50_ms": round(statistics.median(lat) * 1000, 2),
                "p99_ms": round(_pct(lat, 0.99) * 1000, 2),
                "bare_p50_ms": round(statistics.median(bare_lat) * 1000, 2),
                "bare_p99_ms": round(_pct(bare_lat, 0.99) * 1000, 2),
                "enrollments_opened": opened,
                "queued_hits_applied": applied,
                "apply_backlog_seconds": round(apply_seconds, 2),
                "connections": LOAD_PROCESSES * LOAD_CONNECTIONS,
            },
        )
    ]


def run(ctx: BenchContext) -> list[Result]:
    return _imap_results(ctx) + _pixel_results(ctx)
