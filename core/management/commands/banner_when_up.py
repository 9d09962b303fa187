"""`make run`'s last word: once the web process answers /healthz, print the demo banner again.

The banner (admin password, API key) is printed before the processes start,
and their start-up lines scroll it away; this prints it again once the
product is up. It then stays alive doing nothing: honcho stops every process
as soon as one exits.
"""

import contextlib
import threading
import time
import urllib.error
import urllib.request

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Wait until --url answers 200, print the bootstrap_demo banner, then wait until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/healthz")
        parser.add_argument("--timeout", type=float, default=120.0, help="Seconds to wait before giving up.")

    def handle(self, *args, url: str, timeout: float, **options):
        deadline = time.monotonic() + timeout
        while not self._up(url):
            if time.monotonic() > deadline:
                self.stderr.write(f"{url} did not answer 200 within {timeout:.0f}s; see the web process's output.")
                break
            time.sleep(0.5)
        else:
            self.stdout.write(self.style.SUCCESS("\n  Everything is up."))
            call_command("bootstrap_demo", stdout=self.stdout)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches every process of the group
            threading.Event().wait()

    @staticmethod
    def _up(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a local http URL)
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False
