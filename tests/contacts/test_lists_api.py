import threading
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import api_key_create
from contacts.models import Contact, ContactList, ContactListMember
from contacts.services import contact_list_create
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sales(owner):
    return contact_list_create(account=owner, name="Sales", email_address="sales@lists.example.com")


def members_of(contact_list) -> set[str]:
    return set(ContactListMember.objects.filter(contact_list=contact_list).values_list("contact__email", flat=True))


# --- create, show, list, update, delete ---------------------------------------------------------------------------


def test_create_answers_201_with_the_list_and_its_normalized_address(api, owner):
    response = api.post("/api/lists", {"name": " Sales ", "email_address": "  Sales@Lists.Example.COM "}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "email_address", "member_count", "created_at", "updated_at"}
    assert (body["name"], body["email_address"], body["member_count"]) == ("Sales", "sales@lists.example.com", 0)
    uuid.UUID(body["id"])
    assert body["created_at"].endswith("Z") and "." in body["created_at"]
    assert ContactList.objects.get(pk=body["id"]).account == owner


def test_create_works_with_a_trailing_slash(api):
    response = api.post("/api/lists/", {"name": "A", "email_address": "a@lists.example.com"}, format="json")
    assert response.status_code == 201


def test_create_refuses_an_address_taken_by_another_list_of_the_account(api, sales):
    response = api.post("/api/lists", {"name": "Other", "email_address": "SALES@lists.example.com"}, format="json")
    assert response.status_code == 409
    message = "A list with the email address sales@lists.example.com already exists."
    assert response.json() == {
        "error": {"code": "list_already_exists", "message": message, "details": {"email_address": [message]}}
    }
    assert ContactList.objects.count() == 1


def test_another_account_may_use_the_same_address(outsider_api, sales):
    response = outsider_api.post("/api/lists", {"name": "S", "email_address": sales.email_address}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "email_address": "not-an-address"}, "email_address"),
        ({"name": "X"}, "email_address"),
        ({"email_address": "x@lists.example.com"}, "name"),
        ({"name": "   ", "email_address": "x@lists.example.com"}, "name"),
        ({"name": "N" * 256, "email_address": "x@lists.example.com"}, "name"),
        ({"name": "X", "email_address": "x@lists.example.com", "members": []}, "members"),
    ],
)
def test_create_refuses_invalid_input_with_422_naming_the_field(api, body, field):
    response = api.post("/api/lists", body, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert list(error["details"]) == [field]
    assert not ContactList.objects.exists()


def test_create_refuses_malformed_json_with_400(api):
    response = api.post("/api/lists", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_retrieve_shows_the_member_count(api, owner, sales):
    for _ in range(3):
        ContactListMember.objects.create(contact_list=sales, contact=ContactFactory(account=owner))
    for path in (f"/api/lists/{sales.pk}", f"/api/lists/{sales.pk}/"):
        response = api.get(path)
        assert response.status_code == 200
        assert response.json()["member_count"] == 3
        assert response.json()["id"] == str(sales.pk)


def test_list_is_a_bare_array_of_the_callers_lists_with_counts(api, owner, outsider, sales):
    ContactListMember.objects.create(contact_list=sales, contact=ContactFactory(account=owner))
    contact_list_create(account=owner, name="Empty", email_address="empty@lists.example.com")
    contact_list_create(account=outsider, name="Theirs", email_address="theirs@lists.example.com")
    response = api.get("/api/lists")
    assert response.status_code == 200
    assert [(item["name"], item["member_count"]) for item in response.json()] == [("Sales", 1), ("Empty", 0)]


def test_list_pages_follow_the_link_with_a_fixed_number_of_queries(api, owner, django_assert_max_num_queries):
    for n in range(7):
        contact_list = contact_list_create(account=owner, name=f"L{n}", email_address=f"l{n}@lists.example.com")
        ContactListMember.objects.bulk_create(
            ContactListMember(contact_list=contact_list, contact=ContactFactory(account=owner)) for _ in range(n)
        )
    api.get("/api/lists?limit=1")  # the key's first use writes last_used_at once
    seen, url = [], "/api/lists?limit=3"
    while url:
        with django_assert_max_num_queries(2):  # key lookup, the page with its counts
            response = api.get(url)
        seen += [(item["name"], item["member_count"]) for item in response.json()]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == [(f"L{n}", n) for n in range(7)]


def test_patch_changes_name_and_address(api, owner, sales):
    ContactListMember.objects.create(contact_list=sales, contact=ContactFactory(account=owner))
    response = api.patch(f"/api/lists/{sales.pk}", {"name": "Sales EU", "email_address": "EU@Lists.example.com"})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["email_address"], body["member_count"]) == ("Sales EU", "eu@lists.example.com", 1)
    sales.refresh_from_db()
    assert (sales.name, sales.email_address) == ("Sales EU", "eu@lists.example.com")


def test_patch_refuses_an_address_taken_by_another_list(api, owner, sales):
    other = contact_list_create(account=owner, name="Other", email_address="other@lists.example.com")
    response = api.patch(f"/api/lists/{other.pk}", {"email_address": "sales@lists.example.com"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "list_already_exists"
    other.refresh_from_db()
    assert other.email_address == "other@lists.example.com"


def test_patch_refuses_unknown_fields_and_changes_nothing(api, sales):
    response = api.patch(f"/api/lists/{sales.pk}", {"name": "New", "account": "x"}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"account": ["Unknown field."]}
    sales.refresh_from_db()
    assert sales.name == "Sales"


def test_delete_answers_204_and_keeps_the_contacts(api, owner, sales):
    contact = ContactFactory(account=owner)
    ContactListMember.objects.create(contact_list=sales, contact=contact)
    response = api.delete(f"/api/lists/{sales.pk}")
    assert response.status_code == 204
    assert response.content == b""
    assert not ContactList.objects.filter(pk=sales.pk).exists()
    assert not ContactListMember.objects.exists()
    assert Contact.objects.filter(pk=contact.pk).exists()


# --- not found and isolation -------------------------------------------------------------------------------------

LIST_NOT_FOUND = {"error": {"code": "list_not_found", "message": "No list with this id.", "details": {}}}


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("get", "/members"),
        ("post", "/members"),
        ("delete", "/members"),
    ],
)
@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "0b7c3a8e-5f1d-4c2a-9e6b-1d2f3a4b5c6d"])
def test_malformed_or_unknown_list_ids_are_404_list_not_found(api, method, suffix, bad_id):
    response = getattr(api, method)(f"/api/lists/{bad_id}{suffix}", {"emails": []}, format="json")
    assert response.status_code == 404
    assert response.json() == LIST_NOT_FOUND


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"name": "Mine now"}),
        ("delete", "", None),
        ("get", "/members", None),
        ("post", "/members", {"emails": ["ada@example.com"]}),
        ("delete", "/members", {"emails": ["ada@example.com"]}),
    ],
)
def test_an_outsider_can_neither_see_nor_change_the_owners_list(
    outsider_api, outsider, owner, sales, method, suffix, body
):
    ada = ContactFactory(account=owner, email="ada@example.com")
    ContactFactory(account=outsider, email="ada@example.com")
    ContactListMember.objects.create(contact_list=sales, contact=ada)
    response = getattr(outsider_api, method)(f"/api/lists/{sales.pk}{suffix}", body, format="json")
    assert response.status_code == 404
    assert response.json() == LIST_NOT_FOUND
    sales.refresh_from_db()
    assert sales.name == "Sales"
    assert members_of(sales) == {"ada@example.com"}


def test_outsiders_list_index_does_not_show_the_owners_lists(outsider_api, sales):
    assert outsider_api.get("/api/lists").json() == []


def test_without_a_key_it_is_401(anon_api, sales):
    response = anon_api.get("/api/lists")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


# --- members -----------------------------------------------------------------------------------------------------


def test_add_by_email_normalizes_and_reports_the_unmatched(api, owner, sales):
    ContactFactory(account=owner, email="ada@example.com")
    ContactFactory(account=owner, email="bob@example.com")
    response = api.post(
        f"/api/lists/{sales.pk}/members",
        {
            "emails": [
                "  ADA@Example.com ",
                "bob@example.com",
                "nobody@example.com",
                "not an address",
                "ada@example.com",
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "added": 2,
        "not_found": {"emails": ["nobody@example.com", "not an address"], "contact_ids": []},
    }
    assert members_of(sales) == {"ada@example.com", "bob@example.com"}


def test_add_is_idempotent(api, owner, sales):
    ada = ContactFactory(account=owner, email="ada@example.com")
    body = {"contact_ids": [str(ada.pk)]}
    first = api.post(f"/api/lists/{sales.pk}/members", body, format="json")
    second = api.post(f"/api/lists/{sales.pk}/members/", body, format="json")
    assert first.json() == {"added": 1, "not_found": {"emails": [], "contact_ids": []}}
    assert second.status_code == 200
    assert second.json() == {"added": 0, "not_found": {"emails": [], "contact_ids": []}}
    assert ContactListMember.objects.filter(contact_list=sales).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_adds_of_the_same_people_add_each_once(owner):
    contact_list = contact_list_create(account=owner, name="Race", email_address="race@lists.example.com")
    Contact.objects.bulk_create(Contact(account=owner, email=f"r{n}@example.com") for n in range(300))
    raw_key = api_key_create(account=owner)[1]
    barrier, answers = threading.Barrier(2), []

    def add(emails):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        barrier.wait()
        try:
            answers.append(client.post(f"/api/lists/{contact_list.pk}/members", {"emails": emails}, format="json"))
        finally:
            connection.close()

    halves = [[f"r{n}@example.com" for n in range(0, 200)], [f"r{n}@example.com" for n in range(100, 300)]]
    threads = [threading.Thread(target=add, args=(emails,)) for emails in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [a.status_code for a in answers] == [200, 200]
    assert sum(a.json()["added"] for a in answers) == 300
    assert ContactListMember.objects.filter(contact_list=contact_list).count() == 300


def test_add_by_id_reports_unknown_malformed_and_other_accounts_ids_and_never_adds_them(api, owner, outsider, sales):
    mine = ContactFactory(account=owner)
    theirs = ContactFactory(account=outsider, email="theirs@example.com")
    unknown = "0b7c3a8e-5f1d-4c2a-9e6b-1d2f3a4b5c6d"
    response = api.post(
        f"/api/lists/{sales.pk}/members",
        {"contact_ids": [str(mine.pk), str(theirs.pk), unknown, "not-a-uuid", "", "42"]},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "added": 1,
        "not_found": {"emails": [], "contact_ids": [str(theirs.pk), unknown, "not-a-uuid", "", "42"]},
    }
    assert not ContactListMember.objects.filter(contact=theirs).exists()


def test_add_never_matches_another_accounts_contact_by_email(api, outsider, sales):
    ContactFactory(account=outsider, email="theirs@example.com")
    response = api.post(f"/api/lists/{sales.pk}/members", {"emails": ["theirs@example.com"]}, format="json")
    assert response.json() == {"added": 0, "not_found": {"emails": ["theirs@example.com"], "contact_ids": []}}
    assert not ContactListMember.objects.exists()


def test_add_takes_emails_and_ids_together(api, owner, sales):
    ada = ContactFactory(account=owner, email="ada@example.com")
    bob = ContactFactory(account=owner, email="bob@example.com")
    response = api.post(
        f"/api/lists/{sales.pk}/members",
        {"emails": ["ada@example.com"], "contact_ids": [str(ada.pk), str(bob.pk)]},
        format="json",
    )
    assert response.json() == {"added": 2, "not_found": {"emails": [], "contact_ids": []}}


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, {"non_field_errors": ["Give `emails` or `contact_ids` (or both)."]}),
        ({"emails": "ada@example.com"}, {"emails": ['Expected a list of items but got type "str".']}),
        ({"emails": ["x@example.com"] * 10_001}, {"emails": ["Ensure this field has no more than 10000 elements."]}),
        ({"contact_ids": ["x"] * 10_001}, {"contact_ids": ["Ensure this field has no more than 10000 elements."]}),
        ({"emails": [None]}, {"emails": {"0": ["This field may not be null."]}}),
        ({"emails": [], "contacts": []}, {"contacts": ["Unknown field."]}),
    ],
)
@pytest.mark.parametrize("method", ["post", "delete"])
def test_members_input_is_validated_with_422(api, sales, body, details, method):
    response = getattr(api, method)(f"/api/lists/{sales.pk}/members", body, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    assert response.json()["error"]["details"] == details


def test_ten_thousand_emails_are_accepted_in_one_call(api, owner, sales):
    Contact.objects.bulk_create(Contact(account=owner, email=f"bulk{n}@example.com") for n in range(10_000))
    emails = [f"bulk{n}@example.com" for n in range(10_000)]
    response = api.post(f"/api/lists/{sales.pk}/members", {"emails": emails}, format="json")
    assert response.status_code == 200
    assert response.json() == {"added": 10_000, "not_found": {"emails": [], "contact_ids": []}}
    assert api.get(f"/api/lists/{sales.pk}").json()["member_count"] == 10_000


def test_remove_takes_members_off_and_reports_the_unmatched(api, owner, outsider, sales):
    ada = ContactFactory(account=owner, email="ada@example.com")
    bob = ContactFactory(account=owner, email="bob@example.com")
    ContactFactory(account=owner, email="carl@example.com")  # of the account, not on the list
    theirs = ContactFactory(account=outsider, email="ada2@example.com")
    ContactListMember.objects.create(contact_list=sales, contact=ada)
    ContactListMember.objects.create(contact_list=sales, contact=bob)
    response = api.delete(
        f"/api/lists/{sales.pk}/members",
        {"emails": ["ADA@example.com", "carl@example.com", "ghost@example.com"], "contact_ids": [str(theirs.pk), "x"]},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "removed": 1,
        "not_found": {"emails": ["ghost@example.com"], "contact_ids": [str(theirs.pk), "x"]},
    }
    assert members_of(sales) == {"bob@example.com"}
    again = api.delete(f"/api/lists/{sales.pk}/members/", {"contact_ids": [str(ada.pk)]}, format="json")
    assert again.json() == {"removed": 0, "not_found": {"emails": [], "contact_ids": []}}
    assert Contact.objects.filter(pk=ada.pk).exists()


def test_remove_never_touches_another_lists_membership(api, owner, sales):
    ada = ContactFactory(account=owner, email="ada@example.com")
    other = contact_list_create(account=owner, name="Other", email_address="other@lists.example.com")
    ContactListMember.objects.create(contact_list=other, contact=ada)
    response = api.delete(f"/api/lists/{sales.pk}/members", {"emails": ["ada@example.com"]}, format="json")
    assert response.json()["removed"] == 0
    assert members_of(other) == {"ada@example.com"}


def test_members_are_listed_as_contacts_in_the_order_they_were_added(api, owner, sales):
    first = ContactFactory(account=owner, email="first@example.com")
    second = ContactFactory(account=owner, email="second@example.com")
    api.post(f"/api/lists/{sales.pk}/members", {"contact_ids": [str(second.pk)]}, format="json")
    api.post(f"/api/lists/{sales.pk}/members", {"contact_ids": [str(first.pk)]}, format="json")
    response = api.get(f"/api/lists/{sales.pk}/members")
    assert response.status_code == 200
    contacts = api.get("/api/contacts").json()
    by_email = {c["email"]: c for c in contacts}
    assert response.json() == [by_email["second@example.com"], by_email["first@example.com"]]


def test_members_pages_follow_the_link_with_a_fixed_number_of_queries(
    api, owner, outsider, sales, django_assert_max_num_queries
):
    contacts = [ContactFactory(account=owner, email=f"m{n}@example.com") for n in range(8)]
    api.post(f"/api/lists/{sales.pk}/members", {"contact_ids": [str(c.pk) for c in contacts]}, format="json")
    ContactFactory(account=owner, email="not-a-member@example.com")
    seen, url, pages = [], f"/api/lists/{sales.pk}/members?limit=3", 0
    while url:
        with django_assert_max_num_queries(3):  # key lookup, the list, the page with its contacts
            response = api.get(url)
        assert response.status_code == 200
        seen += [c["email"] for c in response.json()]
        pages += 1
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert pages == 3
    assert seen == [f"m{n}@example.com" for n in range(8)]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "cursor=garbage"])
def test_members_refuse_a_bad_limit_or_cursor_with_422(api, sales, query):
    response = api.get(f"/api/lists/{sales.pk}/members?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_the_schema_documents_every_list_endpoint_and_error(api):
    schema = api.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    lists, one, members = paths["/api/lists/"], paths["/api/lists/{id}/"], paths["/api/lists/{id}/members/"]
    assert set(lists) == {"get", "post"}
    assert set(one) == {"get", "patch", "delete"}
    assert set(members) == {"get", "post", "delete"}
    assert set(lists["post"]["responses"]) == {"201", "400", "401", "409", "422"}
    assert "list_already_exists" in lists["post"]["responses"]["409"]["description"]
    assert set(one["patch"]["responses"]) == {"200", "400", "401", "404", "409", "422"}
    assert set(one["delete"]["responses"]) == {"204", "401", "404"}
    for method in ("post", "delete"):
        assert set(members[method]["responses"]) == {"200", "400", "401", "404", "422"}
    assert set(members["get"]["responses"]) == {"200", "401", "404", "422"}
    assert {"limit", "cursor"} <= {p["name"] for p in members["get"].get("parameters", [])}
    assert "list_not_found" in members["get"]["responses"]["404"]["description"]
