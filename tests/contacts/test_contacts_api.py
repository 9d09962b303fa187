import uuid

import pytest

from contacts.models import Contact
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_create_trims_and_lowercases_the_email(api, owner):
    response = api.post(
        "/api/contacts",
        {"email": "  Ada.Lovelace@Example.COM ", "first_name": "Ada", "custom_fields": {"plan": "pro"}},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ada.lovelace@example.com"
    assert body["custom_fields"] == {"plan": "pro"}
    assert body["subscribed"] is True
    assert body["unsubscribed_at"] is None
    uuid.UUID(body["id"])
    assert body["created_at"].endswith("Z") and "." in body["created_at"]
    assert Contact.objects.get(pk=body["id"]).account == owner


def test_create_refuses_an_invalid_address_with_the_reason(api):
    response = api.post("/api/contacts", {"email": "nobody@"}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    assert "email" in response.json()["error"]["details"]
    assert not Contact.objects.exists()


def test_create_refuses_a_second_contact_with_the_same_email(api, owner):
    ContactFactory(account=owner, email="ada@example.com")
    response = api.post("/api/contacts", {"email": "ADA@example.com"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "contact_already_exists"


def test_the_same_email_may_exist_in_another_account(api, outsider):
    ContactFactory(account=outsider, email="ada@example.com")
    assert api.post("/api/contacts", {"email": "ada@example.com"}, format="json").status_code == 201


def test_list_filters_by_email_subscribed_and_updated_after(api, owner):
    first = ContactFactory(account=owner, email="one@example.com")
    ContactFactory(account=owner, email="two@example.com", subscribed=False)
    assert [c["email"] for c in api.get("/api/contacts?email=ONE@example.com").json()] == ["one@example.com"]
    assert [c["email"] for c in api.get("/api/contacts?subscribed=false").json()] == ["two@example.com"]
    later = Contact.objects.get(email="two@example.com").updated_at.isoformat()
    api.patch(f"/api/contacts/{first.pk}", {"first_name": "Changed"}, format="json")
    response = api.get("/api/contacts", {"updated_after": later})
    assert [c["email"] for c in response.json()] == ["one@example.com"]


def test_list_refuses_a_malformed_filter(api):
    response = api.get("/api/contacts?updated_after=yesterday")
    assert response.status_code == 422
    assert "updated_after" in response.json()["error"]["details"]


def test_list_shows_only_the_callers_contacts(api, owner, outsider):
    ContactFactory(account=owner, email="mine@example.com")
    ContactFactory(account=outsider, email="theirs@example.com")
    assert [c["email"] for c in api.get("/api/contacts").json()] == ["mine@example.com"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_accounts_contact_is_404_contact_not_found(api, outsider, method):
    theirs = ContactFactory(account=outsider)
    response = getattr(api, method)(f"/api/contacts/{theirs.pk}", {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "contact_not_found"
    assert Contact.objects.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "0b7c3a8e-5f1d-4c2a-9e6b-1d2f3a4b5c6d"])
def test_malformed_or_unknown_ids_are_the_same_404(api, bad_id):
    response = api.get(f"/api/contacts/{bad_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "contact_not_found"


def test_patch_subscribed_false_stamps_unsubscribed_at_and_true_clears_it(api, owner):
    contact = ContactFactory(account=owner)
    body = api.patch(f"/api/contacts/{contact.pk}", {"subscribed": False}, format="json").json()
    assert body["subscribed"] is False
    assert body["unsubscribed_at"] is not None
    body = api.patch(f"/api/contacts/{contact.pk}", {"subscribed": True}, format="json").json()
    assert body["subscribed"] is True
    assert body["unsubscribed_at"] is None


def test_patch_refuses_unknown_fields_and_changes_nothing(api, owner):
    contact = ContactFactory(account=owner, first_name="Ada")
    response = api.patch(f"/api/contacts/{contact.pk}", {"first_name": "Bob", "id": "x"}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"id": ["Unknown field."]}
    contact.refresh_from_db()
    assert contact.first_name == "Ada"


def test_delete_answers_204_and_removes_the_contact(api, owner):
    contact = ContactFactory(account=owner)
    assert api.delete(f"/api/contacts/{contact.pk}").status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_pagination_follows_link_headers_through_every_contact_once(api, owner, django_assert_max_num_queries):
    for n in range(7):
        ContactFactory(account=owner, email=f"p{n}@example.com")
    api.get("/api/contacts?limit=1")  # the key's first use writes last_used_at once
    seen, url, pages = [], "/api/contacts?limit=3", 0
    while url:
        with django_assert_max_num_queries(2):
            response = api.get(url)
        assert response.status_code == 200
        seen += [c["email"] for c in response.json()]
        pages += 1
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        if url:
            assert link.endswith('rel="next"')
    assert pages == 3
    assert sorted(seen) == sorted(f"p{n}@example.com" for n in range(7))
    assert len(seen) == len(set(seen))


def test_pagination_keeps_filters_in_the_next_link(api, owner):
    for n in range(3):
        ContactFactory(account=owner, email=f"u{n}@example.com", subscribed=False)
    ContactFactory(account=owner, email="s@example.com")
    first = api.get("/api/contacts?subscribed=false&limit=2")
    assert "subscribed=false" in first.headers["Link"]
    link = first.headers["Link"]
    rest = api.get(link[1 : link.index(">")]).json()
    assert [c["email"] for c in rest] == ["u2@example.com"]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "cursor=garbage", "cursor=WyJ4Il0"])
def test_bad_limit_or_cursor_is_422(api, query):
    response = api.get(f"/api/contacts?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_unsubscribing_through_the_api_stops_every_enrollment_as_the_link_does(api, owner):
    from enrollments.models import Enrollment
    from tests.campaigns.factories import CampaignFactory, EnrollmentFactory
    from webhooks.models import WebhookEvent

    contact = ContactFactory(account=owner)
    first = EnrollmentFactory(campaign=CampaignFactory(account=owner), contact=contact)
    second = EnrollmentFactory(campaign=CampaignFactory(account=owner), contact=contact)
    body = api.patch(f"/api/contacts/{contact.pk}", {"subscribed": False, "company": "Gone Ltd"}, format="json").json()
    assert body["subscribed"] is False and body["unsubscribed_at"] and body["company"] == "Gone Ltd"
    stopped = Enrollment.objects.filter(pk__in=[first.pk, second.pk], unsubscribed_at__isnull=False)
    assert stopped.count() == 2
    assert WebhookEvent.objects.filter(type="enrollment.unsubscribed").count() == 2


def test_a_refused_update_unsubscribes_nothing(api, owner):
    from enrollments.models import Enrollment
    from tests.campaigns.factories import CampaignFactory, EnrollmentFactory
    from webhooks.models import WebhookEvent

    ContactFactory(account=owner, email="taken@example.com")
    contact = ContactFactory(account=owner)
    enrollment = EnrollmentFactory(campaign=CampaignFactory(account=owner), contact=contact)

    response = api.patch(
        f"/api/contacts/{contact.pk}", {"subscribed": False, "email": "taken@example.com"}, format="json"
    )

    assert response.status_code == 409
    contact.refresh_from_db()
    assert contact.subscribed is True and contact.unsubscribed_at is None
    assert Enrollment.objects.get(pk=enrollment.pk).unsubscribed_at is None
    assert not WebhookEvent.objects.filter(type="enrollment.unsubscribed").exists()


def test_custom_fields_are_cleaned_as_imports_clean_them(api, owner):
    body = api.post(
        "/api/contacts",
        {"email": "cf@example.com", "custom_fields": {" seats ": 5, "vip": True, "x": None}},
        format="json",
    ).json()
    assert body["custom_fields"] == {"seats": "5", "vip": "True"}
    response = api.post("/api/contacts", {"email": "n@example.com", "custom_fields": {"deep": {"a": 1}}}, format="json")
    assert response.status_code == 422
    assert "custom_fields" in response.json()["error"]["details"]
    contact = Contact.objects.get(email="cf@example.com")
    response = api.patch(f"/api/contacts/{contact.pk}", {"custom_fields": {"k": "v" * 5000}}, format="json")
    assert response.status_code == 422
    contact.refresh_from_db()
    assert contact.custom_fields == {"seats": "5", "vip": "True"}


def test_linkedin_url_is_set_on_create_changed_by_patch_and_shown(api, owner):
    url = "https://www.linkedin.com/in/ada-lovelace"
    created = api.post("/api/contacts", {"email": "ada@example.com", "linkedin_url": f" {url} "}, format="json")
    assert created.status_code == 201
    assert created.json()["linkedin_url"] == url
    contact_id = created.json()["id"]
    patched = api.patch(f"/api/contacts/{contact_id}", {"linkedin_url": "https://linkedin.com/in/ada"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["linkedin_url"] == "https://linkedin.com/in/ada"
    assert Contact.objects.get(pk=contact_id).linkedin_url == "https://linkedin.com/in/ada"
    cleared = api.patch(f"/api/contacts/{contact_id}", {"linkedin_url": None}, format="json")
    assert cleared.json()["linkedin_url"] == ""
