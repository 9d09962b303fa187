"""Factories for inbound-event tests: sends written directly (the sending engine is not needed here)."""

import datetime
import uuid

import factory
from django.utils import timezone

from mailing.models import ScheduledSend
from tests.campaigns.factories import CampaignFactory, SequenceStepFactory, SmtpCredentialFactory, enroll
from tests.factories import ContactFactory


class ScheduledSendFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScheduledSend

    status = ScheduledSend.Status.SENT
    send_at = factory.LazyFunction(timezone.now)
    sent_at = factory.LazyFunction(timezone.now)
    message_id = factory.LazyFunction(lambda: f"<{uuid.uuid4()}@outreach.test>")


def sent_enrollment(campaign, credential, *, email=None, steps=2, sent_minutes_ago=10, status="sent"):
    """An enrollment whose step 1 was sent `sent_minutes_ago` through `credential`; later steps scheduled.

    Returns (enrollment, [send per step]).
    """
    when = timezone.now() - datetime.timedelta(minutes=sent_minutes_ago)
    contact = ContactFactory(account=campaign.account, **({"email": email} if email else {}))
    enrollment = enroll(campaign, status, credential=credential, when=when, contact=contact)
    positions = list(campaign.sequence_steps.order_by("position"))
    while len(positions) < steps:
        positions.append(SequenceStepFactory(campaign=campaign, position=len(positions) + 1))
    sends = []
    for index, step in enumerate(positions[:steps]):
        first = index == 0
        sends.append(
            ScheduledSendFactory(
                campaign=campaign,
                enrollment=enrollment,
                step=step,
                smtp_credential=credential,
                status=ScheduledSend.Status.SENT if first else ScheduledSend.Status.SCHEDULED,
                send_at=when if first else when + datetime.timedelta(days=index),
                sent_at=when if first else None,
                message_id=f"<{uuid.uuid4()}@outreach.test>" if first else None,
            )
        )
    return enrollment, sends


__all__ = ["CampaignFactory", "ScheduledSendFactory", "SmtpCredentialFactory", "sent_enrollment"]
