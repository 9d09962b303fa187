"""Claim and send due mail in this process, in a loop: the beat tick and the worker's task in one.

`python manage.py send_due --until-idle` runs exactly the code of
`mailing.claim_due_sends` and `mailing.send_chunk` (claim with SKIP LOCKED,
then send each (credential, chunk) here instead of through the broker), and
stops once a tick claims nothing for `--idle-seconds`. `--threads N` sends
a tick's chunks N at a time, as a Celery worker with a threads pool does
(`mailing.sending.chunks_send`). For `make run`
without a Celery worker, for operators draining a backlog by hand, and for
the process-level tests (several of these racing on one batch).
"""

import time

from django.core.management.base import BaseCommand, CommandError

from mailing.claiming import sends_claim_due
from mailing.sending import chunks_send


class Command(BaseCommand):
    help = "Claim due sends and deliver them from this process."

    def add_arguments(self, parser):
        parser.add_argument("--until-idle", action="store_true", help="Stop when nothing was due for --idle-seconds.")
        parser.add_argument("--idle-seconds", type=float, default=2.0)
        parser.add_argument("--interval", type=float, default=0.2, help="Pause between ticks that claimed nothing.")
        parser.add_argument(
            "--threads", type=int, default=1, help="Send this many chunks at once, one SMTP connection each."
        )

    def handle(self, *args, until_idle: bool, idle_seconds: float, interval: float, threads: int, **options):
        if threads < 1:
            raise CommandError("--threads must be at least 1.")
        sent = 0
        idle_since = time.monotonic()
        while True:
            # Sent right here, after the claim committed, rather than enqueued.
            chunks = sends_claim_due(enqueue=lambda *chunk: None).chunks
            sent += chunks_send(chunks, threads=threads, worker_prefix="send_due:")
            if chunks:
                idle_since = time.monotonic()
            elif until_idle and time.monotonic() - idle_since >= idle_seconds:
                break
            else:
                time.sleep(interval)
        self.stdout.write(f"sent {sent}")
