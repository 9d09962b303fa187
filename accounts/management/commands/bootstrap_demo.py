"""`make run`'s first-run set-up: a demo admin user, a demo account and an API key.

Made once; later runs print the same credentials. They are kept in
var/demo.json because a raw API key cannot be recovered from its hash: that
file is for a local demo only and is never used in production.
"""

import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import ApiKey
from accounts.services import account_get_or_create, api_key_create, hash_api_key

DEMO_FILE = settings.VAR_DIR / "demo.json"


class Command(BaseCommand):
    help = "Create (once) and print the demo admin user, account and API key for `make run`."

    def handle(self, *args, **options):
        demo = json.loads(DEMO_FILE.read_text()) if DEMO_FILE.exists() else {}
        user_model = get_user_model()
        if not demo or not user_model.objects.filter(username=demo["username"]).exists():
            demo = {"username": "admin", "password": secrets.token_urlsafe(12)}
            user = user_model.objects.filter(username="admin").first() or user_model(username="admin")
            user.is_staff = user.is_superuser = True
            user.set_password(demo["password"])
            user.save()
        account, _ = account_get_or_create(name="Demo")
        if not demo.get("api_key") or not ApiKey.objects.filter(key_hash=hash_api_key(demo["api_key"])).exists():
            demo["api_key"] = api_key_create(account=account, name="make run")[1]
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        DEMO_FILE.write_text(json.dumps(demo))
        DEMO_FILE.chmod(0o600)

        base = "http://127.0.0.1:8000"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"  Admin:     {base}/admin/   user {demo['username']}  password {demo['password']}",
                    f"  API docs:  {base}/api/docs/",
                    f"  API key:   {demo['api_key']}   (account 'Demo')",
                    "  SMTP sink: 127.0.0.1:2525 (no auth, security 'none'); messages land in var/mail/",
                    "",
                ]
            )
        )
