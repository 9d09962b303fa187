"""A local SMTP server that accepts every message and stores it as a file.

For `make run`: point an SMTP credential at 127.0.0.1:2525 with security
`none` and every message the product sends lands in var/mail/ as an .eml file.
"""

import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.core.management.base import BaseCommand


class FileSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        header = f"X-Sink-Mail-From: {envelope.mail_from}\r\nX-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        (self.folder / name).write_bytes(header.encode() + envelope.original_content)
        return "250 Message accepted for delivery"


def accept_any_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)


class Command(BaseCommand):
    help = "Run a local SMTP sink that stores every message under --dir."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2525)
        parser.add_argument("--dir", default="var/mail")

    def handle(self, *args, host: str, port: int, dir: str, **options):
        folder = Path(dir)
        folder.mkdir(parents=True, exist_ok=True)
        controller = Controller(
            FileSink(folder),
            hostname=host,
            port=port,
            authenticator=accept_any_login,
            auth_require_tls=False,
        )
        controller.start()
        self.stdout.write(f"SMTP sink on {host}:{port}, storing messages in {folder.resolve()}/")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
