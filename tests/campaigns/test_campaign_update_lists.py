"""`campaign_update` with whole step and credential lists (what the admin saves through)."""

import pytest

from campaigns.models import Campaign, SequenceStep
from campaigns.services import campaign_update, campaign_validate
from core.errors import ValidationFailed
from mailing.models import ScheduledSend

from .factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory, enroll

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(owner):
    campaign = CampaignFactory(account=owner, name="Lists")
    SequenceStepFactory(campaign=campaign, position=1, subject="One")
    SequenceStepFactory(campaign=campaign, position=2, subject="Two")
    SmtpCredentialFactory(campaign=campaign, smtp_password="smtp-pw", imap_host="imap.example.com", imap_username="u")
    return campaign


def _step(step, **changes):
    return {"id": step.pk, "position": step.position, "subject": step.subject, "body_html": step.body_html, **changes}


def _credential(credential, **changes):
    """The stored credential as an item: its label and its mailbox's settings (the seed's nested shape)."""
    mailbox = credential.mailbox
    settings = {
        "smtp_host": mailbox.smtp_host,
        "smtp_port": mailbox.smtp_port,
        "smtp_username": mailbox.smtp_username,
        "from_email": mailbox.email,
        "daily_limit": mailbox.daily_limit,
        "imap_host": mailbox.imap_host,
    }
    return {"id": credential.pk, "label": credential.label, **settings, **changes}


def _refusal(**kwargs):
    with pytest.raises(ValidationFailed) as caught:
        campaign_update(data={}, **kwargs)
    return caught.value.details


def test_listed_steps_are_changed_in_place_new_ones_added_and_the_rest_deleted(campaign):
    one, two = campaign.sequence_steps.order_by("position")
    enrollment = enroll(campaign)
    ScheduledSend.objects.create(campaign=campaign, enrollment=enrollment, step=one, send_at=one.created_at)
    kept = ScheduledSend.objects.create(campaign=campaign, enrollment=enrollment, step=two, send_at=two.created_at)

    campaign_update(
        campaign=campaign,
        data={"name": "Renamed"},
        sequence_steps=[_step(two, position=1), {"subject": "Three", "body_html": "<p>3</p>", "delay_minutes": 60}],
    )
    steps = list(campaign.sequence_steps.order_by("position"))
    assert [(s.position, s.subject, s.delay_minutes) for s in steps] == [(1, "Two", 0), (2, "Three", 60)]
    assert steps[0].pk == two.pk and not SequenceStep.objects.filter(pk=one.pk).exists()
    assert Campaign.objects.get(pk=campaign.pk).name == "Renamed"
    assert list(ScheduledSend.objects.values_list("pk", flat=True)) == [kept.pk]  # the deleted step's send went


def test_a_stored_credential_keeps_its_secrets_unless_the_item_has_them(campaign):
    credential = campaign.smtp_credentials.get()
    mailbox = credential.mailbox
    campaign_update(campaign=campaign, data={}, smtp_credentials=[_credential(credential, label="Renamed")])
    credential.refresh_from_db()
    mailbox.refresh_from_db()
    assert credential.mailbox_id == mailbox.pk
    assert (credential.label, mailbox.smtp_password, mailbox.imap_password) == ("Renamed", "smtp-pw", "")

    campaign_update(
        campaign=campaign, data={}, smtp_credentials=[_credential(credential, smtp_password="new", imap_password="i")]
    )
    credential.refresh_from_db()
    mailbox.refresh_from_db()
    assert credential.mailbox_id == mailbox.pk
    assert (mailbox.smtp_password, mailbox.imap_password) == ("new", "i")
    assert mailbox.imap_configured


def test_a_new_credential_is_added_beside_the_stored_one(campaign):
    stored = campaign.smtp_credentials.get()
    new = {"smtp_host": "smtp.example.net", "smtp_port": 465, "smtp_username": "b@example.net", "smtp_password": "p"}
    campaign_update(campaign=campaign, data={}, smtp_credentials=[_credential(stored), new])
    added = campaign.smtp_credentials.exclude(pk=stored.pk).get()
    assert added.mailbox_id != stored.mailbox_id
    assert (added.mailbox.email, added.mailbox.smtp_security, added.mailbox.smtp_password) == (
        "b@example.net",
        "ssl",
        "p",
    )


def test_ids_must_be_the_campaigns_own_and_listed_once_and_nothing_is_written(campaign, owner):
    one, two = campaign.sequence_steps.order_by("position")
    elsewhere = SequenceStepFactory(campaign=CampaignFactory(account=owner), position=1)
    details = _refusal(campaign=campaign, sequence_steps=[_step(one), _step(elsewhere, position=2)])
    assert details == {"sequence_steps[1].id": ["No sequence step with this id in this campaign."]}
    details = _refusal(campaign=campaign, sequence_steps=[_step(one), _step(one, position=2)])
    assert details == {"sequence_steps[1].id": ["Listed twice."]}
    assert [(s.pk, s.position) for s in campaign.sequence_steps.order_by("position")] == [(one.pk, 1), (two.pk, 2)]


def test_the_lists_follow_the_creation_rules(campaign):
    (one, two), credential = campaign.sequence_steps.order_by("position"), campaign.smtp_credentials.get()
    assert _refusal(campaign=campaign, sequence_steps=[], smtp_credentials=[]) == {
        "sequence_steps": ["At least one sequence step is required."],
        "smtp_credentials": ["At least one SMTP credential is required."],
    }
    details = _refusal(campaign=campaign, sequence_steps=[_step(one), _step(two, position=3)])
    assert details == {"sequence_steps": ["Step positions must be unique and contiguous from 1 (1..2); got [1, 3]."]}
    details = _refusal(campaign=campaign, smtp_credentials=[_credential(credential, smtp_port=0)])
    assert details == {"smtp_credentials[0].smtp_port": ["Ensure this value is greater than or equal to 1."]}
    assert campaign.smtp_credentials.get().mailbox.smtp_port == 587


def test_campaign_validate_checks_without_writing_or_changing_the_campaign(campaign):
    with pytest.raises(ValidationFailed) as caught:
        campaign_validate(campaign=campaign, data={"min_wait_seconds": 900, "name": "Other"})
    assert caught.value.details == {"max_wait_seconds": ["Must be greater than or equal to min_wait_seconds."]}
    assert (campaign.name, campaign.min_wait_seconds) == ("Lists", 120)
    campaign_validate(campaign=campaign, data={"name": "Fine"}, sequence_steps=[{"subject": "s", "body_html": "b"}])
    assert Campaign.objects.get(pk=campaign.pk).name == "Lists" and campaign.sequence_steps.count() == 2
