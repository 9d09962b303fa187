import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_unknown_route_is_a_json_404(api):
    response = api.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_route_needs_no_key(anon_api):
    response = anon_api.post("/api/nowhere/at/all", {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_malformed_json_is_400_malformed_json(api):
    response = api.post("/api/contacts", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_validation_errors_are_422_with_details_per_field(api):
    response = api.post("/api/contacts", {"email": "not-an-address", "colour": "red"}, format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"] == {"colour": ["Unknown field."]}


def test_a_body_that_is_not_an_object_is_422(api):
    response = api.post("/api/contacts", [1, 2], format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_wrong_method_is_405_in_the_envelope(api):
    response = api.put("/api/contacts", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_json_body_over_the_limit_is_413_and_nothing_is_read(api):
    with override_settings(API_MAX_JSON_BODY_BYTES=1000):
        response = api.post("/api/contacts", {"email": "a@example.com", "first_name": "x" * 2000}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert api.get("/api/contacts").json() == []


def test_paths_work_with_and_without_a_trailing_slash(api):
    assert api.get("/api/contacts").status_code == 200
    assert api.get("/api/contacts/").status_code == 200
