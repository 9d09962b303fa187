"""The enrollment tally stays equal to the enrollments whoever writes them; templating edge cases."""

import pytest
from django.utils import timezone

from campaigns.templating import RenderedStep, render_step, unknown_merge_tags
from contacts.models import Contact
from enrollments.models import Enrollment
from enrollments.selectors import campaign_tally, campaign_tally_from_enrollments

from .factories import CampaignFactory, SmtpCredentialFactory, enroll

pytestmark = pytest.mark.django_db


def _consistent(campaign):
    return campaign_tally(campaign_id=campaign.pk) == campaign_tally_from_enrollments(campaign_id=campaign.pk)


def test_the_tally_follows_inserts_set_based_updates_and_deletes(owner):
    campaign = CampaignFactory(account=owner)
    credential = SmtpCredentialFactory(campaign=campaign)
    rows = [enroll(campaign, "pending", batch=b % 3) for b in range(9)]
    assert _consistent(campaign)
    now = timezone.now()
    Enrollment.objects.filter(pk__in=[r.pk for r in rows[:5]]).update(
        status="sent", sent_at=now, smtp_credential=credential
    )
    Enrollment.objects.filter(pk=rows[0].pk).update(status="opened", opened_at=now)
    Enrollment.objects.filter(pk=rows[1].pk).update(status="bounced", bounced_at=now)
    Enrollment.objects.filter(pk=rows[2].pk).update(batch_number=7)
    Enrollment.objects.filter(pk=rows[3].pk).update(updated_at=now)  # no key change: no tally write
    assert _consistent(campaign)
    Contact.objects.filter(pk=rows[4].contact_id).delete()  # cascades to its enrollment
    credential.delete()  # enrollments keep going, without a credential
    assert _consistent(campaign)
    assert sum(campaign_tally(campaign_id=campaign.pk).values()) == 8


def test_the_database_refuses_a_status_without_its_timestamp(owner):
    from django.db import IntegrityError, transaction

    row = enroll(CampaignFactory(account=owner), "pending")
    with pytest.raises(IntegrityError), transaction.atomic():
        Enrollment.objects.filter(pk=row.pk).update(status="sent")


@pytest.mark.parametrize(
    ("template", "unknown"),
    [
        ("Hi {{first_name}}", []),
        ("Hi {{ first_name | there }} {{custom.Job Title}}", []),
        ("Hi {{frist_name}} and {{frist_name}}", ["{{frist_name}}"]),
        ("{{custom.}} {{ }}", ["{{custom.}}", "{{ }}"]),
        ("Hi {{first_name", ["{{first_name"]),
    ],
)
def test_unknown_merge_tags_are_named_as_written(template, unknown):
    assert unknown_merge_tags(template) == unknown


def test_render_step_derives_text_from_html_when_body_text_is_empty():
    class Step:
        subject = "Hi\t{{first_name}}"
        body_html = "<style>p{}</style><p>Hello&nbsp;{{first_name}}</p><ul><li>One</li></ul>"
        body_text = ""

    class Person:
        first_name = "Zoë"
        custom_fields = {}

    assert render_step(Step, Person) == RenderedStep(
        subject="Hi Zoë", html="<style>p{}</style><p>Hello&nbsp;Zoë</p><ul><li>One</li></ul>", text="Hello Zoë\n\n- One"
    )
