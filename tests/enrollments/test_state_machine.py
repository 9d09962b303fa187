"""The enrollment state machine: transitions, final states, one event per real transition."""

import datetime

import pytest
from django.utils import timezone

from enrollments.models import Enrollment
from enrollments.services import (
    enrollment_transition,
    enrollment_unsubscribe,
    enrollments_unsubscribe_contact,
)
from tests.campaigns.factories import CampaignFactory, EnrollmentFactory
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def enrollment(owner):
    return EnrollmentFactory(campaign=CampaignFactory(account=owner))


def _events(enrollment):
    return list(
        WebhookEvent.objects.filter(data__id=str(enrollment.uuid)).order_by("created_at").values_list("type", flat=True)
    )


def test_the_happy_path_moves_pending_sent_opened_replied_with_one_event_each(enrollment):
    assert enrollment_transition(enrollment_id=enrollment.pk, to="sent", step=1).status == "sent"
    assert enrollment_transition(enrollment_id=enrollment.pk, to="opened").status == "opened"
    replied = enrollment_transition(enrollment_id=enrollment.pk, to="replied")
    assert replied.status == "replied"
    assert replied.sent_at and replied.opened_at and replied.replied_at
    assert _events(enrollment) == ["enrollment.sent", "enrollment.opened", "enrollment.replied"]


def test_a_reply_without_a_seen_open_is_allowed(enrollment):
    enrollment_transition(enrollment_id=enrollment.pk, to="sent")
    replied = enrollment_transition(enrollment_id=enrollment.pk, to="replied")
    assert replied.status == "replied"
    assert replied.opened_at is None


def test_a_late_open_after_a_reply_changes_nothing_and_emits_nothing(enrollment):
    enrollment_transition(enrollment_id=enrollment.pk, to="sent")
    enrollment_transition(enrollment_id=enrollment.pk, to="replied")
    before = Enrollment.objects.get(pk=enrollment.pk)
    assert enrollment_transition(enrollment_id=enrollment.pk, to="opened") is None
    after = Enrollment.objects.get(pk=enrollment.pk)
    assert (after.status, after.opened_at, after.updated_at) == ("replied", None, before.updated_at)
    assert _events(enrollment) == ["enrollment.sent", "enrollment.replied"]


def test_a_second_bounce_changes_nothing(enrollment):
    first = enrollment_transition(enrollment_id=enrollment.pk, to="bounced", bounce_reason="550 no such user")
    assert first.bounce_reason == "550 no such user"
    assert enrollment_transition(enrollment_id=enrollment.pk, to="bounced", bounce_reason="again") is None
    assert Enrollment.objects.get(pk=enrollment.pk).bounce_reason == "550 no such user"
    assert _events(enrollment) == ["enrollment.bounced"]


def test_a_duplicate_open_counts_once(enrollment):
    enrollment_transition(enrollment_id=enrollment.pk, to="sent")
    first_open = timezone.now()
    enrollment_transition(enrollment_id=enrollment.pk, to="opened", at=first_open)
    enrollment_transition(enrollment_id=enrollment.pk, to="opened", at=first_open + datetime.timedelta(hours=1))
    assert Enrollment.objects.get(pk=enrollment.pk).opened_at == first_open
    assert _events(enrollment).count("enrollment.opened") == 1


@pytest.mark.parametrize("status", ["pending", "sent", "opened"])
def test_any_live_state_can_bounce(owner, status):
    now = timezone.now()
    stamps = {"sent": {"sent_at": now}, "opened": {"sent_at": now, "opened_at": now}}.get(status, {})
    enrollment = EnrollmentFactory(campaign=CampaignFactory(account=owner), status=status, **stamps)
    assert enrollment_transition(enrollment_id=enrollment.pk, to="bounced").status == "bounced"


def test_a_replied_enrollment_does_not_bounce(enrollment):
    enrollment_transition(enrollment_id=enrollment.pk, to="sent")
    enrollment_transition(enrollment_id=enrollment.pk, to="replied")
    assert enrollment_transition(enrollment_id=enrollment.pk, to="bounced") is None


def test_pending_cannot_jump_to_opened(enrollment):
    assert enrollment_transition(enrollment_id=enrollment.pk, to="opened") is None
    assert Enrollment.objects.get(pk=enrollment.pk).status == "pending"


def test_unsubscribe_stops_the_sequence_once_and_blocks_later_transitions(enrollment):
    enrollment_transition(enrollment_id=enrollment.pk, to="sent")
    stopped = enrollment_unsubscribe(enrollment_id=enrollment.pk)
    assert stopped.unsubscribed_at is not None
    assert enrollment_unsubscribe(enrollment_id=enrollment.pk) is None
    assert enrollment_transition(enrollment_id=enrollment.pk, to="opened") is None
    assert _events(enrollment) == ["enrollment.sent", "enrollment.unsubscribed"]


def test_unsubscribing_a_contact_stops_each_of_its_enrollments(owner):
    first = EnrollmentFactory(campaign=CampaignFactory(account=owner))
    second = EnrollmentFactory(campaign=CampaignFactory(account=owner), contact=first.contact)
    stopped = enrollments_unsubscribe_contact(contact=first.contact)
    assert {e.pk for e in stopped} == {first.pk, second.pk}
    assert enrollments_unsubscribe_contact(contact=first.contact) == []


def test_the_event_payload_carries_the_enrollment(enrollment):
    enrollment_transition(enrollment_id=enrollment.pk, to="sent", step=1)
    event = WebhookEvent.objects.get(type="enrollment.sent")
    data = event.data
    assert data["id"] == str(enrollment.uuid)
    assert data["campaign_id"] == str(enrollment.campaign_id)
    assert (data["contact_id"], data["contact_email"]) == (str(enrollment.contact_id), enrollment.contact.email)
    assert data["status"] == "sent" and data["step"] == 1 and data["sent_at"].endswith("Z")


def test_the_event_payload_has_exactly_the_documented_fields(enrollment):
    from webhooks.api.event_schema import EnrollmentData

    enrollment_transition(enrollment_id=enrollment.pk, to="sent", step=1)
    data = WebhookEvent.objects.get(type="enrollment.sent").data
    assert set(data) == set(EnrollmentData().fields)
    assert EnrollmentData(data=data).is_valid(), EnrollmentData(data=data).errors
