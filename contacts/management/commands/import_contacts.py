from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import Account
from contacts.importing import ImportRows
from contacts.services import contact_import_create
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Import contacts from a CSV file into an account, as POST /api/contact_imports does."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV with a header row naming an email column.")
        parser.add_argument("--account", required=True, help="Name of an existing account.")
        parser.add_argument("--name", default=None, help="Name of the import (default: the file name).")

    def handle(self, *args, file: str, account: str, name: str | None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        account_obj = Account.objects.filter(name=account).first()
        if account_obj is None:
            raise CommandError(f"No account named {account!r} (create it with create_api_key --account).")
        with path.open("rb") as handle, tqdm(desc="rows", unit=" rows", disable=None, file=self.stderr) as bar:
            try:
                contact_import = contact_import_create(
                    account=account_obj, name=name or path.name, rows=ImportRows.from_csv(handle), progress=bar.update
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from None
        self.stdout.write(
            f"Import {contact_import.id}: {contact_import.total_rows} rows, {contact_import.created} created, "
            f"{contact_import.updated} updated, {len(contact_import.invalid_rows)} invalid."
        )
        for invalid in contact_import.invalid_rows[:20]:
            self.stdout.write(f"  row {invalid['row']}: {invalid['email'] or '(no email)'}: {invalid['reason']}")
        if len(contact_import.invalid_rows) > 20:
            self.stdout.write(f"  … and {len(contact_import.invalid_rows) - 20} more (GET /api/contact_imports/:id)")
