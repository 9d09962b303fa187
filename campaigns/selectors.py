"""Reads for outreaches and campaigns, always scoped to one account."""

import django_filters
from django.db.models import Prefetch, QuerySet, Sum
from django.db.models.functions import Coalesce

from accounts.models import Account
from contacts.models import Contact

from .models import Campaign, Outreach, SmtpCredential
from .templating import render_step


class CampaignFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Campaign.Status.choices)
    outreach_id = django_filters.UUIDFilter(field_name="outreach_id", help_text="Campaigns of this outreach.")

    class Meta:
        model = Campaign
        fields = ["status", "outreach_id"]


def outreach_list(*, account: Account) -> QuerySet[Outreach]:
    return Outreach.objects.filter(account=account)


def campaign_list(*, account: Account) -> QuerySet[Campaign]:
    """The account's campaigns; journeys (campaigns of kind `journey`) are listed as journeys instead."""
    return Campaign.objects.filter(account=account, kind=Campaign.Kind.CAMPAIGN)


def campaign_detail_list(*, account: Account) -> QuerySet[Campaign]:
    """Campaigns with what the show endpoint renders: steps, credentials, the account's time zone."""
    return (
        campaign_list(account=account)
        .select_related("account")
        .prefetch_related(
            "sequence_steps",
            # In the same query: reply detection's sync state (for imap_status) and the messages the
            # sending engine counted through each credential (the bounce rate's denominator); both
            # relations belong to mailing.
            Prefetch(
                "smtp_credentials",
                queryset=SmtpCredential.objects.select_related("mailbox__imap_sync_state")
                .annotate(messages_sent=Coalesce(Sum("days__sent"), 0) + Coalesce(Sum("days__bounced"), 0))
                .order_by(*SmtpCredential._meta.ordering),  # an aggregate drops Meta.ordering
            ),
        )
    )


def smtp_credential_list(*, campaign: Campaign) -> QuerySet[SmtpCredential]:
    return SmtpCredential.objects.filter(campaign=campaign).select_related("mailbox")


def campaign_preview(*, campaign: Campaign, contact: Contact) -> list[dict]:
    """Every step of `campaign` rendered for `contact`, in order."""
    rendered = []
    for step in sorted(campaign.sequence_steps.all(), key=lambda s: s.position):
        result = render_step(step, contact)
        rendered.append(
            {
                "position": step.position,
                "delay_minutes": step.delay_minutes,
                "subject": result.subject,
                "body_html": result.html,
                "body_text": result.text,
            }
        )
    return rendered
