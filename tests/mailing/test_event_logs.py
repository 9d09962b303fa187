"""What `make run` shows a person: a message sent, a reply detected, a campaign completed, in plain words at INFO."""

import logging

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from inbound.models import InboundMessage
from inbound.services import InboundFacts, inbound_message_record
from mailing.scheduling import campaigns_complete_finished
from tests.campaigns.factories import SmtpCredentialFactory, enroll

from .conftest import dispatch, enroll_contacts, make_campaign, run_until_idle

pytestmark = pytest.mark.django_db


def test_a_message_sent_and_the_campaign_completed_are_logged_in_plain_words(api, owner, smtp_server, later, caplog):
    campaign = make_campaign(owner, smtp_server, steps=((0,),))
    (enrollment,) = enroll_contacts(campaign, 1)
    dispatch(api, campaign)
    with caplog.at_level(logging.INFO):
        run_until_idle(now=later)
        campaigns_complete_finished()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("Sent step 1 to " + enrollment.contact.email) for m in messages), messages
    assert f'Campaign "{campaign.name}" completed: nothing left to send' in " ".join(messages), messages


def test_a_reply_detected_is_logged_in_plain_words(owner, caplog):
    campaign = Campaign.objects.create(account=owner, name="Logged", status="active")
    credential = SmtpCredentialFactory(campaign=campaign)
    enrollment = enroll(campaign, "sent", credential=credential)
    facts = InboundFacts(
        message_id="<reply-1@example.com>",
        kind=InboundMessage.Kind.REPLY,
        matched_by=InboundMessage.MatchedBy.HEADERS,
        from_email="ann@example.com",
        subject="Re: Hi",
        received_at=timezone.now(),
    )
    with caplog.at_level(logging.INFO):
        inbound_message_record(
            facts=facts,
            mailbox_id=credential.mailbox_id,
            smtp_credential_id=credential.pk,
            send=None,
            enrollment_id=enrollment.pk,
        )
    enrollment.refresh_from_db()
    assert enrollment.status == "replied"
    assert "Reply detected from ann@example.com" in caplog.text
