import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import Contact, ContactImport
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CSV = (
    "email,first_name,last_name,company,plan\n"
    "ada@example.com,Ada,Lovelace,Analytical,pro\n"
    "not-an-email,Bad,Row,,\n"
    ",No,Email,,\n"
    "GRACE@example.com ,Grace,Hopper,Navy,free\n"
    "ada@example.com,,,,team\n"
)


def _upload(api, content: bytes | str, name: str = "contacts.csv", **extra):
    if isinstance(content, str):
        content = content.encode()
    return api.post(
        "/api/contact_imports", {"file": SimpleUploadedFile(name, content, "text/csv"), **extra}, format="multipart"
    )


def test_csv_import_reports_invalid_rows_and_imports_the_rest(api, owner):
    response = _upload(api, CSV, name="q2.csv")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "q2.csv"
    assert body["total_rows"] == 5
    assert body["created"] == 2
    assert body["updated"] == 0
    assert [(r["row"], r["email"]) for r in body["invalid_rows"]] == [(3, "not-an-email"), (4, None)]
    assert all(r["reason"] for r in body["invalid_rows"])
    ada = Contact.objects.get(account=owner, email="ada@example.com")
    # the duplicate row merged: its empty names kept the first row's, its custom field won
    assert (ada.first_name, ada.last_name, ada.company) == ("Ada", "Lovelace", "Analytical")
    assert ada.custom_fields == {"plan": "team"}
    assert Contact.objects.get(email="grace@example.com").custom_fields == {"plan": "free"}
    assert set(ContactImport.objects.get(pk=body["id"]).contacts.values_list("email", flat=True)) == {
        "ada@example.com",
        "grace@example.com",
    }


def test_the_summary_can_be_read_back(api):
    created = _upload(api, CSV).json()
    response = api.get(f"/api/contact_imports/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_reimport_updates_existing_contacts_instead_of_duplicating(api, owner):
    _upload(api, CSV)
    response = _upload(api, "email,first_name\nada@example.com,Augusta\nnew@example.com,New\n")
    body = response.json()
    assert (body["created"], body["updated"]) == (1, 1)
    assert Contact.objects.filter(account=owner, email="ada@example.com").count() == 1
    ada = Contact.objects.get(account=owner, email="ada@example.com")
    assert ada.first_name == "Augusta"
    assert ada.last_name == "Lovelace"  # not in the file: kept
    assert ContactImport.objects.get(pk=body["id"]).contacts.count() == 2


def test_an_import_never_resubscribes_an_unsubscribed_contact(api, owner):
    ContactFactory(account=owner, email="gone@example.com", subscribed=False)
    _upload(api, "email\ngone@example.com\n")
    assert Contact.objects.get(email="gone@example.com").subscribed is False


def test_json_import_with_invalid_rows(api, owner):
    payload = {
        "name": "from crm",
        "contacts": [
            {"email": "x@example.com", "first_name": "X", "custom_fields": {"tier": "gold"}, "city": "Oslo"},
            {"email": "broken"},
            "not an object",
            {"email": "y@example.com", "first_name": "Y" * 300},
        ],
    }
    response = api.post("/api/contact_imports", payload, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["total_rows"], body["created"]) == ("from crm", 4, 1)
    assert [r["row"] for r in body["invalid_rows"]] == [2, 3, 4]
    assert Contact.objects.get(account=owner, email="x@example.com").custom_fields == {"tier": "gold", "city": "Oslo"}


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "csv_invalid"),
        (b"email\n\xff\xfe broken utf-8\n", "csv_invalid"),
        (b"", "csv_empty"),
        (b"\n\n", "csv_empty"),
        (b"name,company\nAda,Analytical\n", "csv_missing_email_column"),
    ],
)
def test_a_file_that_is_not_usable_csv_is_422_and_writes_nothing(api, content, code):
    response = _upload(api, content)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert not ContactImport.objects.exists()
    assert not Contact.objects.exists()


def test_an_import_request_without_file_or_contacts_is_422(api):
    response = api.post("/api/contact_imports", {"name": "empty"}, format="json")
    assert response.status_code == 422
    assert "contacts" in response.json()["error"]["details"]


def test_another_accounts_import_is_404(api, outsider_api):
    created = _upload(outsider_api, CSV).json()
    response = api.get(f"/api/contact_imports/{created['id']}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "contact_import_not_found"


def test_imports_of_two_accounts_stay_apart(api, outsider_api, owner, outsider):
    _upload(api, CSV)
    _upload(outsider_api, CSV)
    assert Contact.objects.filter(account=owner).count() == 2
    assert Contact.objects.filter(account=outsider).count() == 2


def test_a_csv_linkedin_url_column_fills_the_contacts_linkedin_url_not_a_custom_field(api, owner):
    csv = "email,LinkedIn_URL,plan\nada@example.com, https://www.linkedin.com/in/ada ,pro\nbob@example.com,,free\n"
    assert _upload(api, csv).status_code == 201
    ada = Contact.objects.get(account=owner, email="ada@example.com")
    assert ada.linkedin_url == "https://www.linkedin.com/in/ada"
    assert ada.custom_fields == {"plan": "pro"}
    assert Contact.objects.get(account=owner, email="bob@example.com").linkedin_url == ""
    # a re-import without the value keeps it; one with a new value replaces it
    _upload(api, "email,linkedin_url\nada@example.com,\n")
    ada.refresh_from_db()
    assert ada.linkedin_url == "https://www.linkedin.com/in/ada"
    _upload(api, "email,linkedin_url\nada@example.com,https://linkedin.com/in/ada2\n")
    ada.refresh_from_db()
    assert ada.linkedin_url == "https://linkedin.com/in/ada2"
