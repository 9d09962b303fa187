from django.core.management.base import BaseCommand, CommandError

from accounts.services import account_get_or_create, api_key_create


class Command(BaseCommand):
    help = "Create an API key for an account (made if missing). The raw key is the last line of output."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="Account name; created if it does not exist.")
        parser.add_argument(
            "--monthly-limit", type=int, default=None, help="Sends per calendar month (0: none; omit: unchanged)."
        )
        parser.add_argument("--name", default="", help="A label for the key.")

    def handle(self, *args, account: str, monthly_limit: int | None, name: str, **options):
        if not account.strip():
            raise CommandError("--account must not be empty.")
        if monthly_limit is not None and monthly_limit < 0:
            raise CommandError("--monthly-limit must be 0 or more.")
        account_obj, created = account_get_or_create(name=account.strip(), monthly_limit=monthly_limit)
        _, raw_key = api_key_create(account=account_obj, name=name)
        verb = "Created account" if created else "Account"
        limit = "unlimited" if account_obj.monthly_limit is None else account_obj.monthly_limit
        self.stdout.write(f"{verb} {account_obj.name!r} (id {account_obj.id}, monthly limit {limit}).")
        self.stdout.write("API key (shown once, store it now):")
        self.stdout.write(raw_key)
