"""Every integer that enters (body, query, path) is held to its column's range: a 422 naming it, never a 500."""

import copy

import pytest

from core.serializers import INTEGER_MAX
from enrollments.models import Enrollment
from tests.campaigns.conftest import SEED_PAYLOAD
from tests.campaigns.factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

HUGE = 1180591620717411303424  # 2**70, the value of the report


@pytest.fixture
def payload():
    return copy.deepcopy(SEED_PAYLOAD)


def _schema(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def _unbounded(schema: dict, node, path: str, seen: set) -> list[str]:
    """Paths of integer schemas under `node` without a maximum (following $refs once each)."""
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in _unbounded(schema, item, f"{path}[{i}]", seen)]
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _unbounded(schema, schema["components"]["schemas"][name], name, seen)
    found = []
    if node.get("type") == "integer" and not node.get("readOnly") and "maximum" not in node:
        found.append(path)
    for key in ("properties",):
        for name, child in node.get(key, {}).items():
            if not (isinstance(child, dict) and child.get("readOnly")):
                found += _unbounded(schema, child, f"{path}.{name}", seen)
    for key in ("items", "additionalProperties", "allOf", "oneOf", "anyOf"):
        if key in node:
            found += _unbounded(schema, node[key], f"{path}.{key}", seen)
    return found


def test_every_integer_in_every_documented_body_query_and_path_has_a_maximum(client):
    schema = _schema(client)
    unbounded = []
    for url, operations in schema["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {url} {parameter['in']} {parameter['name']}"
                unbounded += _unbounded(schema, parameter.get("schema", {}), where, set())
            for media in operation.get("requestBody", {}).get("content", {}).values():
                unbounded += [
                    f"{method.upper()} {url} body {p}" for p in _unbounded(schema, media.get("schema", {}), "", set())
                ]
    assert unbounded == []


def test_the_walk_finds_an_unbounded_integer():
    schema = {"components": {"schemas": {"In": {"properties": {"n": {"type": "integer"}}}}}}
    assert _unbounded(schema, {"$ref": "#/components/schemas/In"}, "", set()) == ["In.n"]


def _ready_campaign(owner):
    campaign = CampaignFactory(account=owner)
    SequenceStepFactory(campaign=campaign, position=1)
    SmtpCredentialFactory(campaign=campaign)
    return campaign


@pytest.mark.parametrize("value", [HUGE, -HUGE, INTEGER_MAX + 1])
def test_enroll_contact_with_a_batch_number_past_the_column_is_a_422_naming_it(api, owner, value):
    campaign = _ready_campaign(owner)
    contact = ContactFactory(account=owner)
    body = {"contact_id": str(contact.pk), "batch_number": value}
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", body, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    assert "batch_number" in response.json()["error"]["details"]


def test_the_largest_batch_number_the_column_holds_is_accepted(api, owner):
    campaign = _ready_campaign(owner)
    contact = ContactFactory(account=owner)
    body = {"contact_id": str(contact.pk), "batch_number": INTEGER_MAX}
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", body, format="json")
    assert response.status_code in (200, 201), response.json()
    assert Enrollment.objects.get(campaign=campaign).batch_number == INTEGER_MAX


def test_dispatch_with_a_batch_number_past_the_column_is_a_422_naming_it(api, owner):
    campaign = _ready_campaign(owner)
    response = api.post(f"/api/campaigns/{campaign.pk}/dispatch", {"batch_number": HUGE}, format="json")
    assert response.status_code == 422
    assert "batch_number" in response.json()["error"]["details"]


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("campaign", "min_wait_seconds"),
        ("campaign", "max_wait_seconds"),
        ("step", "delay_minutes"),
        ("step", "position"),
        ("credential", "smtp_port"),
        ("credential", "daily_limit"),
        ("credential", "imap_port"),
    ],
)
def test_campaign_create_with_an_integer_past_its_column_is_a_422_naming_it(api, payload, where, field):
    inner = payload["campaign"]
    target = {"campaign": inner, "step": inner["sequence_steps"][0], "credential": inner["smtp_credentials"][0]}
    target[where][field] = HUGE
    response = api.post("/api/campaigns", payload, format="json")
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert any(key.endswith(field) for key in details), details


def test_campaign_update_with_an_integer_past_its_column_is_a_422_naming_it(api, owner):
    campaign = _ready_campaign(owner)
    response = api.patch(f"/api/campaigns/{campaign.pk}", {"max_wait_seconds": HUGE}, format="json")
    assert response.status_code == 422
    assert "max_wait_seconds" in response.json()["error"]["details"]


@pytest.mark.parametrize(
    "query",
    [
        f"enrollments?batch_number={HUGE}",
        f"enrollments?limit={HUGE}",
        f"skips?limit={HUGE}",
        f"replies?limit={HUGE}",
        f"send_forecast?days={HUGE}",
    ],
)
def test_a_query_integer_past_its_range_is_a_422_naming_it(api, owner, query):
    campaign = _ready_campaign(owner)
    response = api.get(f"/api/campaigns/{campaign.pk}/{query}")
    assert response.status_code == 422, response.content
    name = query.split("?")[1].split("=")[0]
    assert name in response.json()["error"]["details"]


def test_enroll_with_a_batch_size_past_its_range_is_a_422_naming_it(api, owner):
    campaign = _ready_campaign(owner)
    body = {"contact_import_id": "00000000-0000-0000-0000-000000000000", "batch_size": HUGE}
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll", body, format="json")
    assert response.status_code == 422
    assert "batch_size" in response.json()["error"]["details"]


def test_a_huge_number_in_a_path_id_is_the_documented_404(api):
    response = api.get(f"/api/campaigns/{HUGE}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"
