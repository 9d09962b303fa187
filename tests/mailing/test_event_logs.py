"""What `make run` shows a person: a message sent and a campaign completed, in plain words at INFO."""

import logging

import pytest

from mailing.scheduling import campaigns_complete_finished

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
