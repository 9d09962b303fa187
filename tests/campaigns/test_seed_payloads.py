"""Every payload printed in the native seeds (native-campaigns.md, native-enrollments.md), posted verbatim.

The bodies below are copied character for character from the seeds; only
placeholders are filled in (`"<optional>"` dropped, `"<id>"` and `:id`
replaced by real ids, the obfuscated `[email protected]` by an address).
A migrating user copies these; each must be accepted as printed.
"""

import json

import pytest

from campaigns.models import Campaign, SmtpCredential
from contacts.importing import ImportRows
from contacts.services import contact_import_create
from enrollments.models import Enrollment
from mailboxes.models import Mailbox
from mailing.models import ScheduledSend
from tests.campaigns.factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CREATE = """{ "campaign": { "name": "Q2 launch", "outreach_id": "<optional>", "min_wait_seconds": 120, "max_wait_seconds": 420, "verify_email_mx": true, "bounce_rate_threshold": 8.0, "smtp_credentials": [{ "label": "Primary", "smtp_host": "mail.smtp2go.com", "smtp_port": 587, "smtp_username": "...", "smtp_password": "...", "daily_limit": 200, "imap_host": "imap.gmail.com", "imap_port": 993, "imap_username": "...", "imap_password": "..." }], "sequence_steps": [ { "position": 1, "subject": "Hi {{first_name}}", "body_html": "<p>...</p>", "delay_minutes": 0 }, { "position": 2, "subject": "Re: Hi", "body_html": "<p>...</p>", "delay_minutes": 4320 } ] }}"""  # noqa: E501
UPDATE = """{ "campaign": { "name": "...", "bounce_rate_threshold": 10.0 } }"""
ENROLL = """{ "contact_import_id": "<id>", "batch_size": 50 }"""
ENROLL_CONTACT = """{ "contact_id": "<id>", "batch_number": 1, "priority": true }"""
DISPATCH = """{ "batch_number": 1 }"""  # the seed: `Body: { batch_number }`
TEST_SEND = """{ "emails": ["[email protected]"] }"""


def _seed(text: str, **ids: str) -> dict:
    """The printed body with its placeholders filled in (`<optional>` keys dropped)."""
    body = json.loads(text)
    inner = body.get("campaign", body)
    for key, value in list(inner.items()):
        if value == "<optional>":
            del inner[key]
        elif value == "<id>":
            inner[key] = ids[key]
    return body


def _ready_campaign(owner, **fields):
    campaign = CampaignFactory(account=owner, **fields)
    SequenceStepFactory(campaign=campaign, position=1)
    SmtpCredentialFactory(campaign=campaign)
    return campaign


def _create_seed_campaign(api) -> str:
    response = api.post("/api/campaigns", _seed(CREATE), format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_the_create_payload_as_printed_is_accepted(api):
    response = api.post("/api/campaigns", _seed(CREATE), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending"
    credential = SmtpCredential.objects.select_related("mailbox").get(campaign_id=response.json()["id"])
    assert (credential.mailbox.smtp_username, credential.mailbox.email) == ("...", "")


def test_a_credential_without_a_sender_address_is_shown_not_ready_with_the_reason(api):
    campaign_id = _create_seed_campaign(api)
    body = api.get(f"/api/campaigns/{campaign_id}").json()
    (shown,) = body["smtp_credentials"]
    assert shown["ready"] is False and "from_email" in shown["not_ready_reason"]
    assert shown["label"] == "Primary" and shown["imap_configured"] is True  # the existing keys stay
    (stats,) = body["credentials"]
    assert stats["ready"] is False and stats["not_ready_reason"] == shown["not_ready_reason"]
    assert {"sent_today", "bounce_rate", "imap_status", "disabled_at"} <= set(stats)


def test_a_credential_with_an_address_is_shown_ready(api, owner):
    campaign = _ready_campaign(owner)
    body = api.get(f"/api/campaigns/{campaign.pk}").json()
    assert body["smtp_credentials"][0]["ready"] is True and body["smtp_credentials"][0]["not_ready_reason"] is None
    assert body["credentials"][0]["ready"] is True and body["credentials"][0]["not_ready_reason"] is None


def test_a_from_email_that_is_no_address_is_still_refused(api):
    body = _seed(CREATE)
    body["campaign"]["smtp_credentials"][0]["from_email"] = "not an address"
    response = api.post("/api/campaigns", body, format="json")
    assert response.status_code == 422
    assert "smtp_credentials[0].from_email" in response.json()["error"]["details"]


def test_dispatch_refuses_the_seed_campaign_naming_the_credential_and_what_it_lacks(api, owner):
    campaign_id = _create_seed_campaign(api)
    Enrollment.objects.create(campaign_id=campaign_id, contact=ContactFactory(account=owner), batch_number=1)
    credential = SmtpCredential.objects.get(campaign_id=campaign_id)
    response = api.post(f"/api/campaigns/{campaign_id}/dispatch", _seed(DISPATCH), format="json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "campaign_incomplete"
    assert "Primary" in error["message"] and str(credential.pk) in error["message"]
    assert "from_email" in error["message"]
    assert error["details"]["smtp_credentials"][0]["id"] == str(credential.pk)
    assert not ScheduledSend.objects.exists()
    assert Campaign.objects.get(pk=campaign_id).status == "pending"


def test_test_send_refuses_the_seed_campaign_naming_the_credential(api):
    campaign_id = _create_seed_campaign(api)
    body = _seed(TEST_SEND)
    body["emails"] = ["me@example.com"]  # the seed's address is obfuscated in print
    response = api.post(f"/api/campaigns/{campaign_id}/test_send", body, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "campaign_incomplete"
    assert "Primary" in response.json()["error"]["message"]


def test_setting_a_sender_address_makes_the_credential_ready(api, owner):
    campaign_id = _create_seed_campaign(api)
    Mailbox.objects.filter(credentials__campaign_id=campaign_id).update(email="sales@example.com")
    body = api.get(f"/api/campaigns/{campaign_id}").json()
    assert body["smtp_credentials"][0]["ready"] is True


def test_the_update_payload_as_printed_is_accepted(api):
    campaign_id = _create_seed_campaign(api)
    response = api.patch(f"/api/campaigns/{campaign_id}", _seed(UPDATE), format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["name"], response.json()["bounce_rate_threshold"]) == ("...", 10.0)


def test_the_enroll_payload_as_printed_is_accepted(api, owner):
    campaign = _ready_campaign(owner)
    rows = ImportRows.from_records({"email": e} for e in ["a@example.com", "b@example.com"])
    contact_import = contact_import_create(account=owner, name="list", rows=rows)
    body = _seed(ENROLL, contact_import_id=str(contact_import.pk))
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["enrolled"] == 2 and response.json()["batch_size"] == 50


def test_the_enroll_contact_payload_as_printed_is_accepted(api, owner):
    campaign = _ready_campaign(owner)
    contact = ContactFactory(account=owner)
    body = _seed(ENROLL_CONTACT, contact_id=str(contact.pk))
    response = api.post(f"/api/campaigns/{campaign.pk}/enroll_contact", body, format="json")
    assert response.status_code in (200, 201), response.json()
    assert response.json()["batch_number"] == 1 and response.json()["status"] == "pending"


def test_the_dispatch_payload_as_printed_is_accepted(api, owner, settings):
    campaign = _ready_campaign(owner)
    Enrollment.objects.create(campaign=campaign, contact=ContactFactory(account=owner), batch_number=1)
    response = api.post(f"/api/campaigns/{campaign.pk}/dispatch", _seed(DISPATCH), format="json")
    assert response.status_code == 200, response.json()
    assert ScheduledSend.objects.filter(campaign=campaign).count() == 1


def test_the_pause_and_resume_actions_as_printed_are_accepted(api, owner):
    campaign = _ready_campaign(owner, status="active")
    assert api.post(f"/api/campaigns/{campaign.pk}/pause").status_code == 200
    assert api.post(f"/api/campaigns/{campaign.pk}/resume").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "send_forecast?days=7",
        "skips?kind=mx_invalid&limit=100",
        "replies?limit=100",
        "enrollments?status=sent&batch_number=1",
    ],
)
def test_the_printed_queries_are_accepted(api, owner, query):
    campaign = _ready_campaign(owner)
    response = api.get(f"/api/campaigns/{campaign.pk}/{query}")
    assert response.status_code == 200, response.json()


def test_the_preview_query_as_printed_is_accepted(api, owner):
    campaign = _ready_campaign(owner)
    contact = ContactFactory(account=owner)
    response = api.get(f"/api/campaigns/{campaign.pk}/preview?contact_id={contact.pk}")
    assert response.status_code == 200, response.json()


def test_the_reenable_action_as_printed_is_accepted(api, owner):
    campaign = _ready_campaign(owner)
    credential = campaign.smtp_credentials.get()
    response = api.post(f"/api/campaigns/{campaign.pk}/smtp_credentials/{credential.pk}/reenable")
    assert response.status_code == 200, response.json()
