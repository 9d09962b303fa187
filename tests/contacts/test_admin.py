import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import ApiKey
from contacts.models import Contact, ContactImport
from enrollments.models import Enrollment
from tests.campaigns.factories import CampaignFactory, EnrollmentFactory
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_operator_uploads_a_csv_through_the_admin(staff_client, owner):
    csv_file = SimpleUploadedFile("list.csv", b"email,first_name\nada@example.com,Ada\nbad,X\n", "text/csv")
    response = staff_client.post(
        "/admin/contacts/contactimport/add/", {"account": owner.pk, "name": "", "file": csv_file}, follow=True
    )
    assert response.status_code == 200
    assert b"1 created" in response.content
    contact_import = ContactImport.objects.get(account=owner)
    assert (contact_import.name, contact_import.total_rows, contact_import.created) == ("list.csv", 2, 1)


def test_admin_upload_refuses_a_file_without_email_column(staff_client, owner):
    csv_file = SimpleUploadedFile("list.csv", b"name\nAda\n", "text/csv")
    response = staff_client.post("/admin/contacts/contactimport/add/", {"account": owner.pk, "file": csv_file})
    assert response.status_code == 200  # the form again, with the error
    assert b"no &#x27;email&#x27; column" in response.content
    assert not ContactImport.objects.exists()


def test_operator_finds_a_contact_by_email(staff_client, owner):
    ContactFactory(account=owner, email="findme@example.com")
    ContactFactory(account=owner, email="other@example.com")
    response = staff_client.get("/admin/contacts/contact/", {"q": "findme"})
    assert b"findme@example.com" in response.content
    assert b"other@example.com" not in response.content


def test_operator_unsubscribing_in_the_admin_stamps_the_time(staff_client, owner):
    contact = ContactFactory(account=owner)
    enrollment = EnrollmentFactory(campaign=CampaignFactory(account=owner), contact=contact)
    response = staff_client.post(
        f"/admin/contacts/contact/{contact.pk}/change/",
        {
            "account": owner.pk,
            "email": contact.email,
            "custom_fields": "{}",
            "first_name": "",
            "last_name": "",
            "company": "",
        },
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.subscribed is False
    assert contact.unsubscribed_at is not None
    assert Contact.objects.count() == 1
    assert Enrollment.objects.get(pk=enrollment.pk).unsubscribed_at is not None  # its sequence stopped too


def test_the_admin_refuses_what_the_api_refuses_and_keeps_a_contact_in_its_account(staff_client, owner, outsider):
    contact = ContactFactory(account=owner, email="ada@example.com")
    ContactFactory(account=owner, email="taken@example.com")
    form = {"account": outsider.pk, "custom_fields": "{}", "first_name": "", "last_name": "", "company": ""}
    url = f"/admin/contacts/contact/{contact.pk}/change/"

    invalid = staff_client.post(url, {**form, "email": "not an address", "subscribed": "on"})
    taken = staff_client.post(url, {**form, "email": "Taken@Example.com", "subscribed": "on"})
    nested = staff_client.post(url, {**form, "email": "ada@example.com", "custom_fields": '{"a": [1]}'})
    renamed = staff_client.post(url, {**form, "email": " Ada.L@Example.com ", "subscribed": "on"})

    assert [r.status_code for r in (invalid, taken, nested)] == [200, 200, 200]  # the form again, with errors
    assert b"Another contact of the account has this email" in taken.content
    assert renamed.status_code == 302
    contact.refresh_from_db()
    assert (contact.email, contact.account_id, contact.subscribed) == ("ada.l@example.com", owner.pk, True)


def test_operator_creates_an_api_key_and_sees_it_once(staff_client, owner):
    response = staff_client.post("/admin/accounts/apikey/add/", {"account": owner.pk, "name": "zapier"}, follow=True)
    api_key = ApiKey.objects.get(account=owner, name="zapier")
    page = response.content.decode()
    assert "shown once" in page
    raw = page.split("copy it now): ")[1].split("<")[0].strip()
    assert raw.startswith(api_key.prefix)
    detail = staff_client.get(f"/admin/accounts/apikey/{api_key.pk}/change/").content.decode()
    assert raw not in detail
    assert api_key.key_hash not in detail
