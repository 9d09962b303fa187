"""Webhooks: 10,000 events delivered to one local receiver by two worker processes.

The workers are two subprocesses running `webhook_deliveries_run`, the loop the
Celery beat task runs (claim a chunk with SKIP LOCKED, sign, POST, record the
outcome), so the figure is the production path minus the broker. A broker
would add nothing to it: the beat tick does not enqueue per-delivery tasks,
it claims and delivers in the worker (see webhooks/tasks.py).

Baseline: one plain loop POSTing the same 10,000 bodies over one kept-alive
connection (no database, no signing) — what the receiver and the loopback
allow at all.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import BenchContext, Result

EVENTS = 10_000
WORKERS = 2
TARGET = 300.0
ROOT = Path(__file__).resolve().parent.parent

WORKER_SCRIPT = """
import sys, django
django.setup()
from webhooks.delivery import webhook_deliveries_run
sys.stdin.readline()  # wait until every worker is ready, so they start together
print(webhook_deliveries_run(), flush=True)
"""


class _Receiver:
    """A fast keep-alive HTTP receiver on 127.0.0.1 that counts posts and distinct webhook-ids."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: set[str] = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                msg_id = self.headers.get("webhook-id", "")
                with receiver.lock:
                    receiver.count += 1
                    if msg_id:
                        receiver.ids.add(msg_id)
                self.send_response_only(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _seed(account, url: str) -> list[str]:
    from django.db import transaction

    from webhooks.models import WebhookEndpoint
    from webhooks.services import webhook_event_record
    from webhooks.signing import secret_generate

    WebhookEndpoint.objects.create(account=account, url=url, secret=secret_generate())
    ids = []
    for start in range(0, EVENTS, 1000):
        with transaction.atomic():
            for n in range(start, min(start + 1000, EVENTS)):
                data = {"id": f"enrollment-{n}", "campaign_id": "bench", "contact_email": f"p{n}@example.com"}
                ids.append(str(webhook_event_record(account=account, type="enrollment.sent", data=data).id))
    return ids


def _bodies(account) -> list[bytes]:
    from webhooks.models import WebhookEvent
    from webhooks.signing import payload_body

    return [
        payload_body(event_id=str(e.id), event_type=e.type, created_at=e.created_at, data=e.data).encode()
        for e in WebhookEvent.objects.filter(account=account)
    ]


def _raw_baseline(port: int, bodies: list[bytes]) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    started = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/hook", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return len(bodies) / elapsed


def _deliver_with_workers() -> tuple[float, list[int]]:
    env = {**os.environ, "WEBHOOKS_ALLOW_PRIVATE_URLS": "true", "DJANGO_SETTINGS_MODULE": "config.settings"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    time.sleep(3)  # Django setup in each worker, outside the measurement
    started = time.perf_counter()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    counts = [int(worker.communicate(timeout=600)[0].strip() or 0) for worker in workers]
    return time.perf_counter() - started, counts


def run(ctx: BenchContext) -> list[Result]:
    from webhooks.models import WebhookDelivery

    account = ctx.fresh_account("bench-webhooks")
    receiver = _Receiver()
    try:
        url = f"http://127.0.0.1:{receiver.port}/hook"
        started = time.perf_counter()
        _seed(account, url)
        record_rate = EVENTS / (time.perf_counter() - started)

        baseline = _raw_baseline(receiver.port, _bodies(account))
        receiver.count, receiver.ids = 0, set()

        elapsed, counts = _deliver_with_workers()
        rate = EVENTS / elapsed
        succeeded = WebhookDelivery.objects.filter(endpoint__account=account, status="succeeded").count()
        extra = {
            "seconds": round(elapsed, 2),
            "per_worker": counts,
            "succeeded": succeeded,
            "posts_received": receiver.count,
            "distinct_webhook_ids": len(receiver.ids),
            "events_recorded_per_s": round(record_rate),
        }
        results = [
            Result(
                "webhook deliveries (10k events, 2 worker processes)",
                round(rate, 1),
                "events/s",
                baseline=round(baseline, 1),
                target=f">= {TARGET:.0f}/s, all delivered once",
                ok=rate >= TARGET and succeeded == EVENTS and len(receiver.ids) == EVENTS,
                extra=extra,
            )
        ]
    finally:
        receiver.close()
        account.delete()
    return results
