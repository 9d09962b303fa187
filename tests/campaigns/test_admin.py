import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from campaigns.models import Campaign, SmtpCredential

from .factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory, enroll

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


@pytest.fixture
def campaign(owner):
    campaign = CampaignFactory(account=owner, name="Admin campaign")
    SequenceStepFactory(campaign=campaign, position=1)
    SmtpCredentialFactory(
        campaign=campaign,
        smtp_password="smtp-SECRET-value",
        imap_host="imap.example.com",
        imap_port=993,
        imap_username="u",
        imap_password="imap-SECRET-value",
    )
    enroll(campaign, "sent", credential=campaign.smtp_credentials.get())
    enroll(campaign, "bounced", credential=campaign.smtp_credentials.get())
    return campaign


def _stored_ciphertexts():
    with connection.cursor() as cursor:
        cursor.execute("SELECT smtp_password, imap_password FROM campaigns_smtpcredential")
        return [value for row in cursor.fetchall() for value in row if value]


def _change_form_data(campaign, **credential_changes):
    step = campaign.sequence_steps.get()
    credential = campaign.smtp_credentials.get()
    data = {
        "name": campaign.name,
        "outreach": "",
        "min_wait_seconds": campaign.min_wait_seconds,
        "max_wait_seconds": campaign.max_wait_seconds,
        "bounce_rate_threshold": campaign.bounce_rate_threshold,
        "sequence_steps-TOTAL_FORMS": 1,
        "sequence_steps-INITIAL_FORMS": 1,
        "sequence_steps-MIN_NUM_FORMS": 0,
        "sequence_steps-MAX_NUM_FORMS": 1000,
        "sequence_steps-0-id": step.pk,
        "sequence_steps-0-campaign": campaign.pk,
        "sequence_steps-0-position": step.position,
        "sequence_steps-0-delay_minutes": step.delay_minutes,
        "sequence_steps-0-subject": step.subject,
        "sequence_steps-0-body_html": step.body_html,
        "sequence_steps-0-body_text": step.body_text,
        "smtp_credentials-TOTAL_FORMS": 1,
        "smtp_credentials-INITIAL_FORMS": 1,
        "smtp_credentials-MIN_NUM_FORMS": 0,
        "smtp_credentials-MAX_NUM_FORMS": 1000,
    }
    fields = {
        "id": credential.pk,
        "campaign": campaign.pk,
        "label": credential.label,
        "from_email": credential.from_email,
        "from_name": credential.from_name,
        "daily_limit": credential.daily_limit,
        "smtp_host": credential.smtp_host,
        "smtp_port": credential.smtp_port,
        "smtp_security": credential.smtp_security,
        "smtp_username": credential.smtp_username,
        "new_smtp_password": "",
        "imap_host": credential.imap_host,
        "imap_port": credential.imap_port or "",
        "imap_username": credential.imap_username,
        "new_imap_password": "",
        **credential_changes,
    }
    data.update({f"smtp_credentials-0-{key}": value for key, value in fields.items()})
    return data


def test_change_page_shows_stats_and_never_a_secret(staff_client, campaign):
    response = staff_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Totals" in html and "bounce_rate: 50.0%" in html
    assert "SECRET" not in html
    for ciphertext in _stored_ciphertexts():
        assert ciphertext not in html
    assert 'name="smtp_credentials-0-new_smtp_password"' in html


def test_a_blank_password_field_keeps_the_stored_secret(staff_client, campaign):
    data = _change_form_data(campaign, label="Renamed")
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    credential = SmtpCredential.objects.get(campaign=campaign)
    assert credential.label == "Renamed"
    assert credential.smtp_password == "smtp-SECRET-value"
    assert credential.imap_password == "imap-SECRET-value"


def test_a_filled_password_field_replaces_the_secret(staff_client, campaign):
    data = _change_form_data(campaign, new_smtp_password="rotated-pw", new_imap_password="rotated-imap")
    assert staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data).status_code == 302
    credential = SmtpCredential.objects.get(campaign=campaign)
    assert (credential.smtp_password, credential.imap_password) == ("rotated-pw", "rotated-imap")


def test_the_admin_refuses_an_unknown_merge_tag(staff_client, campaign):
    data = _change_form_data(campaign)
    data["sequence_steps-0-subject"] = "Hi {{frist_name}}"
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)
    assert response.status_code == 200
    assert "{{frist_name}}" in response.content.decode()
    assert campaign.sequence_steps.get().subject != "Hi {{frist_name}}"


def test_changelist_filters_by_status_and_searches_by_name(staff_client, owner):
    CampaignFactory(account=owner, name="Spring push", status="active")
    CampaignFactory(account=owner, name="Autumn push", status="paused")
    html = staff_client.get("/admin/campaigns/campaign/?status__exact=active").content.decode()
    assert "Spring push" in html and "Autumn push" not in html
    html = staff_client.get("/admin/campaigns/campaign/?q=autumn").content.decode()
    assert "Autumn push" in html and "Spring push" not in html


def test_deleting_in_the_admin_cascades(staff_client, campaign):
    response = staff_client.post(f"/admin/campaigns/campaign/{campaign.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not SmtpCredential.objects.exists()


def test_outreach_admin_lists_outreaches(staff_client, owner):
    from campaigns.services import outreach_create

    outreach_create(account=owner, name="Big outreach")
    assert "Big outreach" in staff_client.get("/admin/campaigns/outreach/?q=big").content.decode()
