import pytest

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
    assert response.json()["error"]["code"] == "unauthorized"
