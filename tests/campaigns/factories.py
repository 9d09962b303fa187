"""Factories for campaigns and enrollments (in this folder, to keep tests/factories.py free of edit clashes)."""

import factory
from django.utils import timezone

from campaigns.models import Campaign, Outreach, SequenceStep, SmtpCredential
from campaigns.services import MAILBOX_SETTINGS
from enrollments.models import Enrollment, EnrollmentSkip
from tests.factories import AccountFactory, ContactFactory
from tests.mailboxes.factories import MailboxFactory


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


# Keyword arguments of SmtpCredentialFactory that are its mailbox's: the seed's settings (as the campaign
# services map them) and its state.
MAILBOX_KWARGS = {
    **MAILBOX_SETTINGS,
    **{name: name for name in ("disabled_at", "disabled_reason", "auth_kind", "oauth_provider", "oauth_refresh_token")},
}


class SmtpCredentialFactory(factory.django.DjangoModelFactory):
    """A campaign's credential on a mailbox of its account: a new mailbox from the settings given
    (the seed's nested fields), unless `mailbox=` names one."""

    class Meta:
        model = SmtpCredential

    campaign = factory.SubFactory(CampaignFactory)
    label = factory.Sequence(lambda n: f"Mailbox {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        settings = {MAILBOX_KWARGS[k]: kwargs.pop(k) for k in list(kwargs) if k in MAILBOX_KWARGS}
        if "email" not in settings and "smtp_username" in settings:
            settings["email"] = settings["smtp_username"]
        if kwargs.get("mailbox") is None:
            kwargs["mailbox"] = MailboxFactory(account=kwargs["campaign"].account, **settings)
        return super()._create(model_class, *args, **kwargs)


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
