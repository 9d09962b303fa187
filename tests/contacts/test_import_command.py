import io

import pytest
from django.core.management import CommandError, call_command

from contacts.models import Contact, ContactImport

pytestmark = pytest.mark.django_db


def test_import_contacts_imports_a_csv_and_prints_the_summary(owner, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email,first_name\nada@example.com,Ada\nbroken,Bad\n")
    out = io.StringIO()
    call_command("import_contacts", str(path), "--account", owner.name, stdout=out, stderr=io.StringIO())
    assert "2 rows, 1 created, 0 updated, 1 invalid" in out.getvalue()
    assert "row 3: broken" in out.getvalue()
    assert Contact.objects.get(account=owner).email == "ada@example.com"
    assert ContactImport.objects.get(account=owner).name == "people.csv"


def test_import_contacts_refuses_an_unknown_account(tmp_path, db):
    path = tmp_path / "people.csv"
    path.write_text("email\nada@example.com\n")
    with pytest.raises(CommandError, match="No account"):
        call_command("import_contacts", str(path), "--account", "Nobody")


def test_import_contacts_reports_a_file_without_email_column(owner, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("name\nAda\n")
    with pytest.raises(CommandError, match="no 'email' column"):
        call_command("import_contacts", str(path), "--account", owner.name)
    assert not ContactImport.objects.exists()
