"""Factories for campaigns and enrollments (in this folder, to keep tests/factories.py free of edit clashes)."""

import factory
from django.utils import timezone

from campaigns.models import Campaign, Outreach, SequenceStep, SmtpCredential
from enrollments.models import Enrollment, EnrollmentSkip
from tests.factories import AccountFactory, ContactFactory


class OutreachFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Outreach

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Outreach {n}")


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")


class SequenceStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SequenceStep

    campaign = factory.SubFactory(CampaignFactory)
    position = factory.Sequence(lambda n: n + 1)
    subject = "Hi {{first_name|there}}"
    body_html = "<p>Hello {{first_name}} at {{company}}</p>"
    delay_minutes = 0


class SmtpCredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SmtpCredential

    campaign = factory.SubFactory(CampaignFactory)
    label = factory.Sequence(lambda n: f"Mailbox {n}")
    smtp_host = "smtp.example.com"
    smtp_port = 587
    smtp_username = factory.Sequence(lambda n: f"sender{n}@example.com")
    from_email = factory.SelfAttribute("smtp_username")
    smtp_password = "smtp-secret-password"
    smtp_security = "starttls"
    daily_limit = 200


class EnrollmentFactory(factory.django.DjangoModelFactory):
    """A pending enrollment; pass `status=` with the matching timestamps for others."""

    class Meta:
        model = Enrollment

    campaign = factory.SubFactory(CampaignFactory)
    contact = factory.SubFactory(ContactFactory, account=factory.SelfAttribute("..campaign.account"))
    batch_number = 1


def enroll(campaign, status="pending", *, credential=None, batch=1, opened=False, replied=False, when=None, **extra):
    """An enrollment in `status` with the timestamps that status implies."""
    when = when or timezone.now()
    fields = {"status": status, "batch_number": batch, "smtp_credential": credential, **extra}
    if status != "pending":
        fields.setdefault("sent_at", when)
    if status == "bounced":
        fields["bounced_at"] = when
        fields.setdefault("bounce_reason", "550 5.1.1 mailbox unavailable")
    if status == "opened" or opened:
        fields["opened_at"] = when
    if status == "replied" or replied:
        fields["replied_at"] = when
    return EnrollmentFactory(campaign=campaign, **fields)


class EnrollmentSkipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EnrollmentSkip

    campaign = factory.SubFactory(CampaignFactory)
    contact = factory.SubFactory(ContactFactory, account=factory.SelfAttribute("..campaign.account"))
    email = factory.SelfAttribute("contact.email")
    kind = "mx_invalid"
    reason = "No MX record"
