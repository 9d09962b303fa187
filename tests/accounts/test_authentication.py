import pytest
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_bearer_header_authenticates(api):
    response = api.get("/api/contacts")
    assert response.status_code == 200
    assert response.json() == []


def test_x_api_key_header_authenticates(owner_key, anon_api):
    response = anon_api.get("/api/contacts", HTTP_X_API_KEY=owner_key)
    assert response.status_code == 200


def test_missing_key_is_401_in_the_envelope(anon_api):
    response = anon_api.get("/api/contacts")
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_AUTHORIZATION": "Bearer ok_not-a-real-key"},
        {"HTTP_X_API_KEY": "ok_not-a-real-key"},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
        {"HTTP_AUTHORIZATION": "Bearer"},
    ],
)
def test_unknown_or_malformed_key_is_401(anon_api, headers, owner):
    response = anon_api.get("/api/contacts", **headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_revoked_key_is_401(owner, anon_api):
    api_key, raw_key = api_key_create(account=owner)
    api_key_revoke(api_key=api_key)
    response = anon_api.get("/api/contacts", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert response.status_code == 401


def test_key_is_stored_hashed_with_a_visible_prefix_and_records_its_use(owner, anon_api):
    api_key, raw_key = api_key_create(account=owner)
    assert raw_key not in (api_key.key_hash, api_key.prefix)
    assert raw_key.startswith(api_key.prefix)
    assert api_key.last_used_at is None
    before = timezone.now()
    anon_api.get("/api/contacts", HTTP_X_API_KEY=raw_key)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at >= before


def test_authenticated_request_costs_no_write_within_a_minute(api, django_assert_max_num_queries):
    api.get("/api/contacts")  # first use stamps last_used_at
    with django_assert_max_num_queries(2):  # key lookup + the page
        api.get("/api/contacts")
