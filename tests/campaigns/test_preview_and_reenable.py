import pytest
from django.utils import timezone

from campaigns.models import SmtpCredential
from tests.factories import ContactFactory

from .factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(owner):
    campaign = CampaignFactory(account=owner)
    SequenceStepFactory(
        campaign=campaign,
        position=1,
        subject="Hi {{first_name|there}} from {{company}}",
        body_html='<p>Hello {{ first_name | friend }},</p><p>Plan: {{custom.plan}}</p><a href="https://x.test/">Go</a>',
    )
    SequenceStepFactory(
        campaign=campaign,
        position=2,
        delay_minutes=4320,
        subject="Re: {{email}}",
        body_html="<p>{{last_name}}</p>",
        body_text="Text for {{first_name|there}} <b>kept</b>",
    )
    return campaign


def test_preview_renders_every_step_for_the_contact(api, owner, campaign):
    contact = ContactFactory(
        account=owner, first_name="Ada", last_name="O'Hara & Co", company="Acme", custom_fields={"plan": "Pro"}
    )
    response = api.get(f"/api/campaigns/{campaign.pk}/preview?contact_id={contact.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["contact_id"] == str(contact.pk)
    first, second = body["steps"]
    assert first["subject"] == "Hi Ada from Acme"
    assert first["body_html"].startswith("<p>Hello Ada,</p><p>Plan: Pro</p>")
    assert "Hello Ada," in first["body_text"] and "Go (https://x.test/)" in first["body_text"]
    assert "<" not in first["body_text"]
    assert (second["position"], second["delay_minutes"]) == (2, 4320)
    assert second["subject"] == f"Re: {contact.email}"
    assert second["body_html"] == "<p>O&#x27;Hara &amp; Co</p>"
    assert second["body_text"] == "Text for Ada <b>kept</b>"


def test_fallbacks_fill_empty_values(api, owner, campaign):
    contact = ContactFactory(account=owner, first_name="", company="")
    first, second = api.get(f"/api/campaigns/{campaign.pk}/preview?contact_id={contact.pk}").json()["steps"]
    assert first["subject"] == "Hi there from"
    assert first["body_html"].startswith("<p>Hello friend,</p><p>Plan: </p>")
    assert second["body_text"].startswith("Text for there")


def test_values_are_html_escaped_in_bodies(api, owner, campaign):
    contact = ContactFactory(account=owner, first_name="<script>alert(1)</script>")
    first, _ = api.get(f"/api/campaigns/{campaign.pk}/preview?contact_id={contact.pk}").json()["steps"]
    assert "<script>" not in first["body_html"]
    assert "&lt;script&gt;" in first["body_html"]


def test_a_value_with_line_breaks_never_reaches_the_subject_as_a_header(api, owner, campaign):
    contact = ContactFactory(account=owner, first_name="Ada\r\nBcc: victim@example.com", company="X\nY")
    first, _ = api.get(f"/api/campaigns/{campaign.pk}/preview?contact_id={contact.pk}").json()["steps"]
    assert "\r" not in first["subject"] and "\n" not in first["subject"]
    assert first["subject"] == "Hi Ada Bcc: victim@example.com from X Y"


@pytest.mark.parametrize("contact_id", ["00000000-0000-0000-0000-000000000000", "nope"])
def test_preview_for_an_unknown_contact_is_contact_not_found(api, campaign, contact_id):
    response = api.get(f"/api/campaigns/{campaign.pk}/preview?contact_id={contact_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "contact_not_found"


def test_preview_for_another_accounts_contact_is_contact_not_found(api, outsider, campaign):
    foreign = ContactFactory(account=outsider)
    response = api.get(f"/api/campaigns/{campaign.pk}/preview?contact_id={foreign.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "contact_not_found"


def test_preview_needs_a_contact_id(api, campaign):
    response = api.get(f"/api/campaigns/{campaign.pk}/preview")
    assert response.status_code == 422
    assert "contact_id" in response.json()["error"]["details"]


def test_preview_of_another_accounts_campaign_is_campaign_not_found(outsider_api, outsider, campaign):
    contact = ContactFactory(account=outsider)
    response = outsider_api.get(f"/api/campaigns/{campaign.pk}/preview?contact_id={contact.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"


def test_reenable_clears_disabled_at_and_the_reason(api, campaign):
    credential = SmtpCredentialFactory(campaign=campaign, disabled_at=timezone.now(), disabled_reason="Bounces")
    response = api.post(f"/api/campaigns/{campaign.pk}/smtp_credentials/{credential.pk}/reenable")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(credential.pk)
    assert body["disabled_at"] is None and body["disabled_reason"] == ""
    assert "smtp_password" not in body
    credential.mailbox.refresh_from_db()
    assert (credential.mailbox.disabled_at, credential.mailbox.disabled_reason) == (None, "")
    # re-enabling an enabled credential is harmless
    assert api.post(f"/api/campaigns/{campaign.pk}/smtp_credentials/{credential.pk}/reenable/").status_code == 200


def test_reenable_of_an_unknown_credential_or_one_of_another_campaign_is_a_404(api, owner, campaign):
    elsewhere = SmtpCredentialFactory(campaign=CampaignFactory(account=owner), disabled_at=timezone.now())
    for credential_id in (elsewhere.pk, "00000000-0000-0000-0000-000000000000", "nope"):
        response = api.post(f"/api/campaigns/{campaign.pk}/smtp_credentials/{credential_id}/reenable")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "smtp_credential_not_found"
    assert SmtpCredential.objects.get(pk=elsewhere.pk).mailbox.disabled_at is not None


def test_reenable_in_another_accounts_campaign_is_campaign_not_found(outsider_api, campaign):
    credential = SmtpCredentialFactory(campaign=campaign, disabled_at=timezone.now())
    response = outsider_api.post(f"/api/campaigns/{campaign.pk}/smtp_credentials/{credential.pk}/reenable")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"
    assert SmtpCredential.objects.get(pk=credential.pk).mailbox.disabled_at is not None
