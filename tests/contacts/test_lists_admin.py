import pytest
from django.contrib.auth import get_user_model

from contacts.models import ContactList, ContactListMember
from contacts.services import contact_list_create, contact_list_members_add
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

PREFIX = "members"


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


@pytest.fixture
def sales(owner):
    return contact_list_create(account=owner, name="Sales", email_address="sales@lists.example.com")


def inline(rows=(), new=()):
    """The members inline's POST data: stored rows as (member, contact id, delete?), then new contact ids."""
    data = {
        f"{PREFIX}-TOTAL_FORMS": str(len(rows) + len(new)),
        f"{PREFIX}-INITIAL_FORMS": str(len(rows)),
        f"{PREFIX}-MIN_NUM_FORMS": "0",
        f"{PREFIX}-MAX_NUM_FORMS": "1000",
    }
    for index, (member, contact_id, delete) in enumerate(rows):
        data[f"{PREFIX}-{index}-id"] = str(member.pk)
        data[f"{PREFIX}-{index}-contact_list"] = str(member.contact_list_id)
        data[f"{PREFIX}-{index}-contact"] = str(contact_id)
        if delete:
            data[f"{PREFIX}-{index}-DELETE"] = "on"
    for offset, contact_id in enumerate(new):
        data[f"{PREFIX}-{len(rows) + offset}-contact"] = str(contact_id)
    return data


def members_of(contact_list) -> set[str]:
    return set(ContactListMember.objects.filter(contact_list=contact_list).values_list("contact__email", flat=True))


def test_changelist_shows_member_counts_and_searches_name_and_address(staff_client, owner, sales):
    contact_list_members_add(contact_list=sales, emails=[ContactFactory(account=owner).email for _ in range(3)])
    contact_list_create(account=owner, name="Partners", email_address="partners@lists.example.com")
    response = staff_client.get("/admin/contacts/contactlist/")
    assert response.status_code == 200
    rows = {row.name: row.member_count for row in response.context["cl"].result_list}
    assert rows == {"Sales": 3, "Partners": 0}
    by_name = staff_client.get("/admin/contacts/contactlist/", {"q": "partn"})
    assert [row.name for row in by_name.context["cl"].result_list] == ["Partners"]
    by_address = staff_client.get("/admin/contacts/contactlist/", {"q": "sales@lists"})
    assert [row.name for row in by_address.context["cl"].result_list] == ["Sales"]
    by_account = staff_client.get("/admin/contacts/contactlist/", {"account__id__exact": str(owner.pk)})
    assert by_account.status_code == 200
    assert len(by_account.context["cl"].result_list) == 2


def test_add_and_change_pages_render(staff_client, owner, sales):
    contact_list_members_add(contact_list=sales, emails=[ContactFactory(account=owner, email="ada@example.com").email])
    assert staff_client.get("/admin/contacts/contactlist/add/").status_code == 200
    response = staff_client.get(f"/admin/contacts/contactlist/{sales.pk}/change/")
    assert response.status_code == 200
    assert b"ada@example.com" in response.content
    assert b"the 100 added last" in response.content


def test_operator_creates_a_list_with_members_through_the_services(staff_client, owner):
    ada = ContactFactory(account=owner, email="ada@example.com")
    response = staff_client.post(
        "/admin/contacts/contactlist/add/",
        {"account": owner.pk, "name": " Sales ", "email_address": " Sales@Lists.Example.com", **inline(new=[ada.pk])},
    )
    assert response.status_code == 302, response.context["errors"] if response.context else response
    contact_list = ContactList.objects.get()
    assert (contact_list.account, contact_list.name, contact_list.email_address) == (
        owner,
        "Sales",
        "sales@lists.example.com",
    )
    assert members_of(contact_list) == {"ada@example.com"}


def test_admin_refuses_an_address_taken_in_the_account(staff_client, owner, outsider, sales):
    response = staff_client.post(
        "/admin/contacts/contactlist/add/",
        {"account": owner.pk, "name": "Again", "email_address": "SALES@lists.example.com", **inline()},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "email_address": ["Another list of the account has the address sales@lists.example.com."]
    }
    other_account = staff_client.post(
        "/admin/contacts/contactlist/add/",
        {"account": outsider.pk, "name": "Theirs", "email_address": "sales@lists.example.com", **inline()},
    )
    assert other_account.status_code == 302
    assert ContactList.objects.filter(email_address="sales@lists.example.com").count() == 2


def test_operator_renames_adds_and_removes_members_on_the_change_page(staff_client, owner, sales):
    ada = ContactFactory(account=owner, email="ada@example.com")
    bob = ContactFactory(account=owner, email="bob@example.com")
    carl = ContactFactory(account=owner, email="carl@example.com")
    contact_list_members_add(contact_list=sales, contact_ids=[str(ada.pk), str(bob.pk)])
    ada_row = ContactListMember.objects.get(contact=ada)
    bob_row = ContactListMember.objects.get(contact=bob)
    response = staff_client.post(
        f"/admin/contacts/contactlist/{sales.pk}/change/",
        {
            "name": "Sales EU",
            "email_address": "EU@lists.example.com",
            **inline(rows=[(ada_row, ada.pk, True), (bob_row, bob.pk, False)], new=[carl.pk]),
        },
    )
    assert response.status_code == 302, response.context["errors"] if response.context else response
    sales.refresh_from_db()
    assert (sales.name, sales.email_address) == ("Sales EU", "eu@lists.example.com")
    assert members_of(sales) == {"bob@example.com", "carl@example.com"}


def test_changing_a_rows_contact_swaps_the_member(staff_client, owner, sales):
    ada = ContactFactory(account=owner, email="ada@example.com")
    carl = ContactFactory(account=owner, email="carl@example.com")
    contact_list_members_add(contact_list=sales, contact_ids=[str(ada.pk)])
    row = ContactListMember.objects.get(contact=ada)
    response = staff_client.post(
        f"/admin/contacts/contactlist/{sales.pk}/change/",
        {"name": "Sales", "email_address": sales.email_address, **inline(rows=[(row, carl.pk, False)])},
    )
    assert response.status_code == 302
    assert members_of(sales) == {"carl@example.com"}


def test_admin_refuses_another_accounts_contact_as_a_member(staff_client, owner, outsider, sales):
    theirs = ContactFactory(account=outsider, email="theirs@example.com")
    response = staff_client.post(
        f"/admin/contacts/contactlist/{sales.pk}/change/",
        {"name": "Sales", "email_address": sales.email_address, **inline(new=[theirs.pk])},
    )
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors
    assert errors[0] == {
        "contact": ["theirs@example.com is a contact of another account; a list holds its own account's contacts only."]
    }
    assert not ContactListMember.objects.exists()


def test_a_new_list_refuses_a_contact_of_another_account(staff_client, owner, outsider):
    theirs = ContactFactory(account=outsider, email="theirs@example.com")
    response = staff_client.post(
        "/admin/contacts/contactlist/add/",
        {"account": owner.pk, "name": "New", "email_address": "new@lists.example.com", **inline(new=[theirs.pk])},
    )
    assert response.status_code == 200
    assert "another account" in str(response.context["inline_admin_formsets"][0].formset.errors)
    assert not ContactList.objects.exists()


def test_operator_deletes_a_list_and_its_contacts_stay(staff_client, owner, sales):
    ada = ContactFactory(account=owner)
    contact_list_members_add(contact_list=sales, contact_ids=[str(ada.pk)])
    response = staff_client.post(f"/admin/contacts/contactlist/{sales.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ContactList.objects.exists()
    assert not ContactListMember.objects.exists()
    ada.refresh_from_db()


def test_contact_autocomplete_for_the_members_inline_finds_contacts_by_email(staff_client, owner, sales):
    ContactFactory(account=owner, email="findme@example.com")
    response = staff_client.get(
        "/admin/autocomplete/",
        {"app_label": "contacts", "model_name": "contactlistmember", "field_name": "contact", "term": "findme"},
    )
    assert response.status_code == 200
    assert [item["text"] for item in response.json()["results"]] == ["findme@example.com"]


def test_the_change_page_shows_only_the_members_added_last(staff_client, owner, sales):
    contacts = [ContactFactory(account=owner, email=f"m{n:03}@example.com") for n in range(105)]
    for contact in contacts:  # one call each, so each has its own created_at
        contact_list_members_add(contact_list=sales, contact_ids=[str(contact.pk)])
    response = staff_client.get(f"/admin/contacts/contactlist/{sales.pk}/change/")
    shown = {form.instance.contact.email for form in response.context["inline_admin_formsets"][0].formset.initial_forms}
    assert shown == {f"m{n:03}@example.com" for n in range(5, 105)}
    assert b"105" in response.content  # the member count
