"""Garbage in, a documented 4xx out: no endpoint answers 500 to a malformed body or query.

Each case posts odd shapes (wrong types, nulls, nested junk, huge numbers, a
list instead of an object) to a real object of the caller and checks the
answer is a 4xx in the error envelope.
"""

import pytest
from django.utils import timezone

from tests.campaigns.factories import CampaignFactory, EnrollmentFactory, SequenceStepFactory, SmtpCredentialFactory

pytestmark = pytest.mark.django_db

BODIES = [
    [1, 2, 3],
    "just a string",
    {"name": None, "email": None, "contact_id": None, "contact_import_id": None},
    {"name": {"nested": True}, "batch_number": "x", "batch_size": [1], "days": -1, "emails": "a@example.com"},
    {"campaign": "not an object"},
    {"campaign": {"sequence_steps": "no", "smtp_credentials": {"a": 1}, "min_wait_seconds": 10**30}},
    {"url": 12345, "events": "enrollment.sent", "enabled": "perhaps"},
    {"batch_number": 10**30, "priority": {"x": 1}, "contact_id": ["a"]},
]


@pytest.fixture
def ids(owner):
    campaign = CampaignFactory(account=owner)
    SequenceStepFactory(campaign=campaign, position=1)
    SmtpCredentialFactory(campaign=campaign)
    EnrollmentFactory(campaign=campaign, status="sent", sent_at=timezone.now())
    return {"campaign": campaign.pk}


def _paths(ids) -> list[tuple[str, str]]:
    """Every endpoint that reads a body (pause, resume and reenable read none)."""
    c = ids["campaign"]
    return [
        ("post", "/api/contacts"),
        ("post", "/api/contact_imports"),
        ("post", "/api/outreaches"),
        ("post", "/api/campaigns"),
        ("patch", f"/api/campaigns/{c}"),
        ("post", f"/api/campaigns/{c}/enroll"),
        ("post", f"/api/campaigns/{c}/enroll_contact"),
        ("post", f"/api/campaigns/{c}/dispatch"),
        ("post", f"/api/campaigns/{c}/test_send"),
        ("post", f"/api/campaigns/{c}/unknown_sends/release"),
        ("post", "/api/webhook_endpoints"),
    ]


@pytest.mark.parametrize("body_index", range(len(BODIES)))
def test_odd_bodies_get_a_4xx_in_the_envelope(api, ids, body_index):
    for method, path in _paths(ids):
        response = getattr(api, method)(path, BODIES[body_index], format="json")
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.content[:300])
        assert response.json()["error"]["code"], (method, path)


@pytest.mark.parametrize(
    "query",
    ["limit=-5", "limit=10000000000000000000", "cursor=%00%ff", "status=%00", "batch_number=1e9999", "days=abc",
     "days=0", "days=91", "kind=[]", "contact_id=../../etc", "updated_after=2026-13-45T99:00:00Z", "email[]=x"],
)  # fmt: skip
def test_odd_query_strings_get_a_2xx_or_4xx(api, ids, query):
    c = ids["campaign"]
    for path in (
        "/api/contacts",
        "/api/campaigns",
        "/api/outreaches",
        "/api/contact_imports",
        "/api/webhook_endpoints",
        f"/api/campaigns/{c}/enrollments",
        f"/api/campaigns/{c}/replies",
        f"/api/campaigns/{c}/skips",
        f"/api/campaigns/{c}/send_forecast",
        f"/api/campaigns/{c}/preview",
        f"/api/campaigns/{c}/unknown_sends",
    ):
        response = api.get(f"{path}?{query}")
        assert response.status_code < 500, (path, query, response.status_code, response.content[:300])


def test_a_nul_character_anywhere_in_a_json_body_is_422_and_nothing_is_stored(api, owner):
    from contacts.models import Contact, ContactImport

    contact = {"email": "nul@example.com", "custom_fields": {"note": "a\u0000b"}}
    response = api.post("/api/contacts", contact, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    response = api.post(
        "/api/contact_imports", {"contacts": [{"email": "x@example.com", "city": "\u0000"}]}, format="json"
    )
    assert response.status_code == 422
    assert not Contact.objects.exists() and not ContactImport.objects.exists()


def test_a_cursor_holding_the_wrong_types_is_422(api):
    import base64
    import json

    cursor = base64.urlsafe_b64encode(json.dumps([5, {"x": 1}]).encode()).decode().rstrip("=")
    response = api.get(f"/api/contacts?cursor={cursor}")
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"cursor": ["Invalid cursor."]}
